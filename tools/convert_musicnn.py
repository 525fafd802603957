"""Convert musicnn's MSD or MTT model (TensorFlow 1 checkpoint) to a genre-tag checkpoint.

musicnn (Jordi Pons and Xavier Serra, Music Technology Group, UPF; ISC licence)
ships its weights in the ``musicnn`` wheel on PyPI. This script reads them with
TensorFlow's checkpoint reader and writes ``weights/musicnn-msd.safetensors``
(``--model MTT``: ``weights/musicnn-mtt.safetensors``): the 50 tags of the
Million Song Dataset (or MagnaTagATune), the front end musicnn was trained with
(16 kHz, 512-point FFT, hop 256, 96 Slaney mel bands, log10(1 + 10000 x)) and
3-second inputs. With ``--reference FILE`` it also runs the original
TensorFlow graph on a synthetic input and saves the input and logits, which
``tests/test_musicnn.py`` compares with the converted model.

Needs TensorFlow and tf_keras beside genre-tag, in a separate environment::

    python -m venv /tmp/tf && /tmp/tf/bin/pip install tensorflow-cpu tf_keras -e .
    /tmp/tf/bin/pip download musicnn==0.1.0 --no-deps -d /tmp/musicnn
    unzip -q /tmp/musicnn/musicnn-0.1.0-py3-none-any.whl -d /tmp/musicnn
    /tmp/tf/bin/python tools/convert_musicnn.py /tmp/musicnn weights/musicnn-msd.safetensors \\
        --reference tests/data/musicnn-msd-reference.npz
    /tmp/tf/bin/python tools/convert_musicnn.py /tmp/musicnn weights/musicnn-mtt.safetensors \\
        --model MTT --reference tests/data/musicnn-mtt-reference.npz
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import torch

from tagger.cards import ModelCard
from tagger.checkpoints import save_checkpoint
from tagger.features import FrontEndSpec
from tagger.models import MusiCNN

MSD_TAGS = [
    "rock", "pop", "alternative", "indie", "electronic", "female vocalists", "dance", "00s",
    "alternative rock", "jazz", "beautiful", "metal", "chillout", "male vocalists",
    "classic rock", "soul", "indie rock", "Mellow", "electronica", "80s", "folk", "90s", "chill",
    "instrumental", "punk", "oldies", "blues", "hard rock", "ambient", "acoustic", "experimental",
    "female vocalist", "guitar", "Hip-Hop", "70s", "party", "country", "easy listening", "sexy",
    "catchy", "funk", "electro", "heavy metal", "Progressive rock", "60s", "rnb", "indie pop",
    "sad", "House", "happy",
]
MTT_TAGS = [
    "guitar", "classical", "slow", "techno", "strings", "drums", "electronic", "rock", "fast",
    "piano", "ambient", "beat", "violin", "vocal", "synth", "female", "indian", "opera", "male",
    "singing", "vocals", "no vocals", "harpsichord", "loud", "quiet", "flute", "woman",
    "male vocal", "no vocal", "pop", "soft", "sitar", "solo", "man", "classic", "choir", "voice",
    "new age", "dance", "male voice", "female vocal", "beats", "harp", "cello", "no voice",
    "weird", "country", "metal", "female voice", "choral",
]
TAGGERS = {  # --model: (musicnn's name, our name, tags, what it was trained on)
    "MSD": ("MSD_musicnn", "musicnn-msd", MSD_TAGS,
            "the Million Song Dataset's 50 most frequent Last.fm tags"),
    "MTT": ("MTT_musicnn", "musicnn-mtt", MTT_TAGS,
            "the MagnaTagATune dataset's 50 most frequent tags"),
}
FRONT_END = FrontEndSpec(sample_rate=16000, segment_samples=16000, n_fft=512, hop_length=256,
                         n_mels=96, f_max=8000.0, pad_mode="reflect", compression="log10",
                         context_segments=1)
TRAINED_FRAMES = 187  # musicnn's input: 3 s at hop 256


def tensorflow_state(checkpoint: str) -> dict[str, torch.Tensor]:
    """The checkpoint's variables under ``MusiCNN``'s parameter names."""
    import tensorflow as tf

    reader = tf.compat.v1.train.NewCheckpointReader(checkpoint)

    def get(name: str) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(reader.get_tensor(name)))

    state: dict[str, torch.Tensor] = {}

    def norm(prefix: str, index: int) -> None:
        scope = "batch_normalization" + (f"_{index}" if index else "")
        for ours, theirs in (("weight", "gamma"), ("bias", "beta"),
                             ("running_mean", "moving_mean"),
                             ("running_var", "moving_variance")):
            state[f"{prefix}.{ours}"] = get(f"{scope}/{theirs}")
        state[f"{prefix}.num_batches_tracked"] = torch.tensor(0)

    def conv(index: int) -> str:
        return "conv2d" + (f"_{index}" if index else "")

    norm("input_norm", 0)
    for i in range(5):  # kernels (time, frequency, in, out) -> (out, in, time, frequency)
        state[f"frontend.{i}.conv.weight"] = get(f"{conv(i)}/kernel").permute(3, 2, 0, 1)
        state[f"frontend.{i}.conv.bias"] = get(f"{conv(i)}/bias")
        norm(f"frontend.{i}.norm", i + 1)
    for i in range(3):  # kernels (time, channels, 1, out) -> (out, channels, time)
        state[f"midend.{i}.conv.weight"] = get(f"{conv(i + 5)}/kernel")[:, :, 0].permute(2, 1, 0)
        state[f"midend.{i}.conv.bias"] = get(f"{conv(i + 5)}/bias")
        norm(f"midend.{i}.norm", i + 6)
    norm("pool_norm", 9)
    state["dense.weight"] = get("dense/kernel").T
    state["dense.bias"] = get("dense/bias")
    norm("dense_norm", 10)
    state["head.weight"] = get("dense_1/kernel").T
    state["head.bias"] = get("dense_1/bias")
    return {name: tensor.contiguous() for name, tensor in state.items()}


def synthetic_melgrams(count: int = 2) -> np.ndarray:
    """Deterministic log-mel-like inputs ``(count, 187, 96)``: harmonic stripes, a pulse and
    noise, in the range musicnn's front end produces."""
    generator = np.random.default_rng(0)
    frames, bands = np.arange(TRAINED_FRAMES)[:, None], np.arange(96)[None, :]
    inputs = []
    for i in range(count):
        stripes = (np.sin(bands * (0.3 + 0.2 * i)) > 0.6) * 1.5
        pulse = ((frames % (20 + 7 * i)) < 3) * np.exp(-bands / 40)
        noise = generator.integers(0, 4, (TRAINED_FRAMES, 96)) * 0.15
        inputs.append(np.log10(1 + 10000 * (0.001 * (stripes + 2 * pulse + noise))))
    return np.round(np.stack(inputs), 2).astype(np.float32)


def tensorflow_logits(musicnn_dir: Path, checkpoint: str, original: str,
                      inputs: np.ndarray) -> np.ndarray:
    """Run musicnn's own TensorFlow graph on ``inputs``."""
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    sys.path.insert(0, str(musicnn_dir))
    import tensorflow as tf
    from musicnn import models

    tf.compat.v1.disable_eager_execution()
    x = tf.compat.v1.placeholder(tf.float32, [None, TRAINED_FRAMES, 96])
    is_training = tf.compat.v1.placeholder(tf.bool)
    logits = models.define_model(x, is_training, original, 50)[0]
    with tf.compat.v1.Session() as session:
        tf.compat.v1.train.Saver().restore(session, checkpoint)
        return session.run(logits, feed_dict={x: inputs, is_training: False})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("musicnn_dir", type=Path, help="the unpacked musicnn wheel")
    parser.add_argument("out", type=Path, help="the .safetensors file to write")
    parser.add_argument("--model", choices=TAGGERS, default="MSD",
                        help="which musicnn tagger to convert (default MSD)")
    parser.add_argument("--reference", type=Path, help="also save TensorFlow's logits here")
    args = parser.parse_args()
    original, name, tags, trained_on = TAGGERS[args.model]
    checkpoint = str(args.musicnn_dir / "musicnn" / original) + "/"
    model = MusiCNN(len(tags), FRONT_END.input_shape)
    model.load_state_dict(tensorflow_state(checkpoint), strict=True)
    model.eval()
    card = ModelCard(
        name=name, task="tags", classes=tags, architecture="musicnn",
        hyperparameters={}, front_end=FRONT_END, input_shape=FRONT_END.input_shape,
        training={"source": f"musicnn 0.1.0 (PyPI), {original}: Pons and Serra, 'musicnn: "
                            "pre-trained convolutional neural networks for music audio "
                            f"tagging', ISMIR 2019 LBD; trained on {trained_on}",
                  "licence": "ISC, Copyright (c) Music Technology Group, Universitat Pompeu "
                             "Fabra 2019",
                  "command": "python tools/convert_musicnn.py MUSICNN_DIR OUT"
                             + (f" --model {args.model}" if args.model != "MSD" else "")})
    save_checkpoint(model, card, args.out)
    print(f"wrote {args.out}")
    if args.reference:
        inputs = synthetic_melgrams()
        expected = tensorflow_logits(args.musicnn_dir, checkpoint, original, inputs)
        with torch.no_grad():
            ours = model(torch.from_numpy(inputs)).numpy()
        print(f"largest difference from TensorFlow's logits: {np.abs(ours - expected).max():.2e}")
        np.savez_compressed(args.reference, inputs=inputs, logits=expected)
        print(f"wrote {args.reference}")


if __name__ == "__main__":
    main()
