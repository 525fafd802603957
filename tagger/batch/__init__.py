"""``genre-tag batch``: many songs into Parquet tables, resumably, on Ray Data or in this
process: ``sources`` (what to tag), ``request`` (the run's settings and summary),
``stages`` (decode and melgrams, the model, the writer), ``tables`` (the Parquet schema
and parts), the ``local`` and ``ray_engine`` engines, and ``run`` (one run)."""
