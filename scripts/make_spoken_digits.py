#!/usr/bin/env python
"""Regenerate the bundled *spoken digits* dataset (``datasets/spoken_digits/``).

A small, download-free stand-in for the Spiking Heidelberg Digits (SHD, Cramer et al. 2020): the digits
zero..nine spoken in English and German (20 classes), synthesised with espeak-ng in many voices, passed through
a 700-channel model cochlea and converted to spikes. The output files use exactly SHD's HDF5 layout, so anything
that reads SHD (``tonic.datasets.SHD``, snnkit's loader) reads them too.

Usage (from the repository root)::

    python scripts/make_spoken_digits.py                  # writes datasets/spoken_digits/*.h5
    python scripts/make_spoken_digits.py --out-dir /tmp/sd --n-speakers 32 --seed 1

Requirements: the ``espeak-ng`` program (Debian/Ubuntu: ``sudo apt-get install espeak-ng``; macOS:
``brew install espeak-ng``), numpy, scipy, h5py and snnkit itself (``pip install -e .``: the files are written
with its atomic-write helper).

Classes
-------
label 0..9   English "zero" .. "nine"   (spoken with an English espeak-ng voice)
label 10..19 German  "null" .. "neun"   (spoken with espeak-ng's German voice)

Speakers
--------
A *speaker* is one espeak-ng voice configuration: a voice variant (timbre: formant scaling, pitch range,
roughness, e.g. ``+m3``, ``+f2``, ``+klatt2``), an English accent (``en-us``, ``en-gb-scotland``, ...) used for the
English words, the German voice ``de`` with the same variant for the German words, a speaking rate ``-s`` (words
per minute) and a pitch ``-p`` (0..99). Every speaker says every word ``--repeats`` times; each repetition jitters
rate and pitch slightly and gets its own onset delay and background noise. The train/test split is by speaker
*and* by voice variant: the variants of the test speakers never occur in the training set (as in SHD, where two
speakers are only in the test set), so the test set measures generalisation to unseen voices.

Pipeline (one utterance)
------------------------
1. **Synthesis**: ``espeak-ng -v <voice>+<variant> -s <rate> -p <pitch> -w out.wav <word>`` (22.05 kHz, 16 bit).
2. **Conditioning**: resample to ``fs`` = 16 kHz, trim leading/trailing silence (-40 dB re. peak), apply a
   first-order pre-emphasis ``x[n] - 0.9 x[n-1]`` (a crude outer/middle-ear transfer function that lifts the
   -6 dB/octave tilt of voiced speech so that formants above 1 kHz reach threshold), normalise to unit RMS,
   place the word after a random onset delay (20..120 ms), pad with silence to at most ``max_duration``
   (1 s; longer words are cut) and add white noise at a random SNR (30..45 dB).
3. **Basilar membrane**: 700 fourth-order gammatone filters (Patterson et al. 1992) with centre frequencies
   equally spaced on the ERB-number scale (Glasberg & Moore 1990) from 50 Hz to 7 kHz; bandwidth
   ``1.019 * ERB(fc)`` with ``ERB(f) = 24.7 (4.37 f / 1000 + 1)`` Hz. Each filter is realised as a cascade of
   four complex one-pole filters (Hohmann 2002), normalised to unit gain at its centre frequency, so its
   output is analytic: the magnitude is the Hilbert envelope of the band.
4. **Inner hair cell**: the band's Hilbert envelope (rectification without ripple) is low-pass filtered and
   decimated by block-averaging over ``dt`` = 0.5 ms (-3 dB at ~0.9 kHz, like the hair-cell membrane that
   removes phase locking at high frequencies), then compressed logarithmically: the level ``L`` in dB re. the
   utterance RMS is mapped onto a saturating rate-level function ``drive = clip((L - L_thr) / DR, 0, 1)``
   with ``L_thr`` = -45 dB and dynamic range ``DR`` = 35 dB, the typical operating range of an auditory-nerve
   fibre.
5. **Spike generation** (auditory nerve / bushy cell): one leaky integrate-and-fire neuron per channel,
   ``tau_m dv/dt = -v + I_max * drive``, spike when ``v >= 1 + a``, then ``v = 0`` and an absolute refractory
   period ``t_ref``; the spike-triggered threshold increase ``a`` (``+beta`` per spike, decaying with
   ``tau_a``) makes the neurons adapt: strong onset responses, lower sustained rates, as in the auditory
   nerve. A neuron can only fire for ``drive > 1 / I_max``, i.e. above -27.5 dB re. the utterance RMS, which
   keeps the background noise silent. Defaults: ``tau_m`` = 5 ms, ``I_max`` = 2.0, ``t_ref`` = 3 ms,
   ``beta`` = 1.5, ``tau_a`` = 80 ms; they set the budget of ~1,800 spikes per sample. Spike times are the ends
   of the 0.5 ms simulation steps.

Each sample becomes a list of ``(time in seconds, unit in 0..699)`` spikes, sorted by time, stored as float16
times and uint16 units like SHD. All randomness derives from ``--seed`` (per-sample generators keyed by the
sample index), so the output is identical for any number of worker processes.

References
----------
- Cramer, Stradmann, Schemmel, Zenke (2020). The Heidelberg Spiking Data Sets for the Systematic Evaluation of
  Spiking Neural Networks. IEEE TNNLS. (layout of the HDF5 files)
- Glasberg & Moore (1990). Derivation of auditory filter shapes from notched-noise data. Hearing Research 47.
- Patterson, Robinson, Holdsworth, McKeown, Zhang, Allerhand (1992). Complex sounds and auditory images.
- Hohmann (2002). Frequency analysis and synthesis using a Gammatone filterbank. Acta Acustica 88.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from math import comb
from pathlib import Path

import numpy as np

try:
    import h5py
    from scipy.io import wavfile
    from scipy.signal import lfilter, resample_poly
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise SystemExit(f"make_spoken_digits.py needs numpy, scipy and h5py ({exc}). Install: pip install scipy h5py")

from snnkit.atomic import atomic_write_bytes

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT_DIR = REPO_ROOT / "datasets" / "spoken_digits"

ENGLISH_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
GERMAN_WORDS = ("null", "eins", "zwei", "drei", "vier", "fünf", "sechs", "sieben", "acht", "neun")
#: Class names in label order (label 0..9 English, 10..19 German), as stored in ``extra/keys``.
CLASS_NAMES = ENGLISH_WORDS + GERMAN_WORDS

#: English espeak-ng voices (accents) used for the English words. German words always use ``de``.
ENGLISH_VOICES = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd",
                  "en-us-nyc", "en-029")
GERMAN_VOICE = "de"

#: espeak-ng voice variants (``<voice>+<variant>``) and their gender, from espeak-ng-data/voices/!v (1.51).
#: Novelty variants (whisper, robots, "Demonic", "announcer", "croak", "fast" ...) are deliberately left out.
VOICE_VARIANTS = {
    "female": ("f1", "f2", "f3", "f4", "f5", "Alicia", "Andrea", "Annie", "anika", "aunty", "belinda", "grandma",
               "linda", "steph", "steph2", "steph3"),
    "male": ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "Andy", "Denis", "Diogo", "Henrique", "Hugo", "Lee",
             "Marco", "antonio", "michel", "miguel", "sandro", "travis", "victor", "klatt", "klatt2", "klatt3",
             "adam", "benjamin", "caleb", "david", "edward", "john", "paul", "robert"),
}

INSTALL_HINT = ("espeak-ng was not found. It synthesises the speech for this dataset. Install it with\n"
                "    sudo apt-get install espeak-ng      (Debian/Ubuntu package 'espeak-ng')\n"
                "    brew install espeak-ng              (macOS)\n"
                "or pass --espeak /path/to/espeak-ng.")


# ----------------------------------------------------------------------------------------------------------------
# Configuration
# ----------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CochleaConfig:
    """Parameters of the audio front end and the spike encoder (see the module docstring)."""

    fs: int = 16_000                 # audio sample rate after resampling (Hz)
    n_channels: int = 700            # cochlear channels = input units (as in SHD)
    f_min: float = 50.0              # lowest centre frequency (Hz)
    f_max: float = 7_000.0           # highest centre frequency (Hz)
    order: int = 4                   # gammatone order
    bandwidth_factor: float = 1.019  # gammatone bandwidth in ERBs (Patterson et al. 1992)
    dt: float = 5e-4                 # hair-cell decimation step = neuron simulation step (s)
    preemphasis: float = 0.9         # first-order pre-emphasis coefficient
    trim_db: float = -40.0           # silence threshold for trimming the synthesised word (dB re. peak)
    level_threshold_db: float = -45.0  # rate-level threshold L_thr (dB re. utterance RMS)
    dynamic_range_db: float = 35.0   # rate-level dynamic range DR (dB)
    tau_m: float = 5e-3              # membrane time constant (s)
    i_max: float = 2.0               # input current at saturating drive (threshold = 1)
    t_ref: float = 3e-3              # absolute refractory period (s)
    beta: float = 1.5                # spike-triggered threshold increase
    tau_a: float = 80e-3             # threshold adaptation time constant (s)
    max_duration: float = 1.0        # sample length cap (s)
    onset_range: tuple[float, float] = (0.02, 0.12)  # random silence before the word (s)
    snr_range_db: tuple[float, float] = (30.0, 45.0)  # background white-noise SNR (dB)


@dataclass(frozen=True)
class Speaker:
    """One synthetic speaker: an espeak-ng voice configuration."""

    id: int
    variant: str
    gender: str
    english_voice: str
    rate: int    # espeak-ng -s, words per minute
    pitch: int   # espeak-ng -p, 0..99
    split: str   # "train" or "test"


@dataclass(frozen=True)
class Job:
    """One utterance to synthesise and encode."""

    index: int      # global sample index (keys the per-sample random generator)
    label: int
    speaker: Speaker
    repeat: int


# ----------------------------------------------------------------------------------------------------------------
# Speech synthesis
# ----------------------------------------------------------------------------------------------------------------
def find_espeak(program: str = "espeak-ng") -> str:
    """Return the path of the espeak-ng executable or exit with an install hint."""
    path = shutil.which(program)
    if path is None:
        raise SystemExit(INSTALL_HINT)
    return path


def espeak_version(espeak: str) -> str:
    """e.g. ``"eSpeak NG text-to-speech: 1.51"`` (without the machine-specific data path that follows)."""
    out = subprocess.run([espeak, "--version"], capture_output=True, text=True, check=True).stdout
    return out.strip().split("  Data at:")[0]


def check_voices(espeak: str) -> None:
    """Fail early, naming what is missing, if this espeak-ng lacks a voice or variant the dataset uses."""
    listed = subprocess.run([espeak, "--voices"], capture_output=True, text=True, check=True).stdout
    languages = {line.split()[1] for line in listed.splitlines()[1:] if len(line.split()) > 1}
    missing = [v for v in ENGLISH_VOICES + (GERMAN_VOICE,) if v not in languages]
    variants_out = subprocess.run([espeak, "--voices=variant"], capture_output=True, text=True, check=True).stdout
    files = {token[3:].lower() for line in variants_out.splitlines()[1:] for token in line.split()
             if token.startswith("!v/")}
    missing += [f"+{v}" for vs in VOICE_VARIANTS.values() for v in vs if v.lower() not in files]
    if missing:
        raise SystemExit(f"espeak-ng ({espeak_version(espeak)}) lacks voices/variants used by this dataset: "
                         f"{', '.join(missing)}. The dataset was made with espeak-ng 1.51 (Debian package).")


def synthesize(espeak: str, text: str, voice: str, rate: int, pitch: int, fs: int) -> np.ndarray:
    """Speak ``text`` with espeak-ng and return the waveform as float64 at ``fs`` Hz."""
    with tempfile.TemporaryDirectory() as tmp:
        wav_path = os.path.join(tmp, "word.wav")
        cmd = [espeak, "-v", voice, "-s", str(rate), "-p", str(pitch), "-w", wav_path, text]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"espeak-ng failed ({' '.join(cmd)}): {proc.stderr.strip()}")
        rate_in, audio = wavfile.read(wav_path)
    audio = audio.astype(np.float64)
    if audio.ndim > 1:
        audio = audio.mean(axis=1)
    if rate_in != fs:
        g = np.gcd(int(rate_in), int(fs))
        audio = resample_poly(audio, fs // g, rate_in // g)
    return audio


def trim_silence(x: np.ndarray, fs: int, threshold_db: float) -> np.ndarray:
    """Cut leading and trailing parts whose 5 ms RMS is more than ``-threshold_db`` below the loudest frame."""
    frame = max(1, int(0.005 * fs))
    n = len(x) // frame
    if n == 0:
        return x
    rms = np.sqrt(np.mean(x[: n * frame].reshape(n, frame) ** 2, axis=1) + 1e-20)
    loud = np.flatnonzero(20 * np.log10(rms / rms.max()) > threshold_db)
    return x[loud[0] * frame: (loud[-1] + 1) * frame]


# ----------------------------------------------------------------------------------------------------------------
# Cochlea: gammatone filterbank + inner hair cell
# ----------------------------------------------------------------------------------------------------------------
def erb_bandwidth(f: np.ndarray) -> np.ndarray:
    """Equivalent rectangular bandwidth of the human auditory filter at ``f`` Hz (Glasberg & Moore 1990)."""
    return 24.7 * (4.37e-3 * f + 1.0)


def hz_to_erb_number(f: np.ndarray) -> np.ndarray:
    return 21.4 * np.log10(1.0 + 4.37e-3 * f)


def erb_number_to_hz(e: np.ndarray) -> np.ndarray:
    return (10.0 ** (e / 21.4) - 1.0) / 4.37e-3


def centre_frequencies(cfg: CochleaConfig) -> np.ndarray:
    """Centre frequencies (Hz, ascending; unit 0 is the lowest) equally spaced on the ERB-number scale."""
    e = np.linspace(hz_to_erb_number(cfg.f_min), hz_to_erb_number(cfg.f_max), cfg.n_channels)
    return erb_number_to_hz(e)


def band_envelopes(x: np.ndarray, cfg: CochleaConfig) -> np.ndarray:
    """Gammatone filterbank + hair-cell low-pass: ``[n_channels, n_frames]`` envelopes at ``cfg.dt`` steps.

    Each channel is a cascade of ``cfg.order`` complex one-pole filters ``y[n] = g x[n] + p y[n-1]`` with pole
    ``p = exp((-2 pi b + 2 pi i fc) / fs)`` and gain ``g = 1 - |p|`` (unit gain at ``fc``). For a real input the
    complex output carries half the amplitude of the band, so ``2 |y|`` is the band's Hilbert envelope. The
    cascade is run as one direct-form filter ``g^order / (1 - p z^-1)^order`` (3x faster than four passes; in
    float64 it matches the cascade to ~1e-8 relative, also for the narrowest, 50 Hz, channel).
    """
    fc = centre_frequencies(cfg)
    b = cfg.bandwidth_factor * erb_bandwidth(fc)
    poles = np.exp((-2.0 * np.pi * b + 2j * np.pi * fc) / cfg.fs)
    hop = int(round(cfg.dt * cfg.fs))
    if abs(hop - cfg.dt * cfg.fs) > 1e-9:
        raise ValueError(f"dt * fs must be an integer number of samples, got {cfg.dt * cfg.fs}")
    n_frames = len(x) // hop
    out = np.empty((cfg.n_channels, n_frames))
    xc = x.astype(np.complex128)
    binomial = np.array([comb(cfg.order, j) * (-1) ** j for j in range(cfg.order + 1)], dtype=np.float64)
    powers = np.arange(cfg.order + 1)
    for k, p in enumerate(poles):
        denominator = binomial * p ** powers  # coefficients of (1 - p z^-1)^order
        y = lfilter([(1.0 - abs(p)) ** cfg.order], denominator, xc)
        env = 2.0 * np.abs(y[: n_frames * hop])
        out[k] = env.reshape(n_frames, hop).mean(axis=1)
    return out


def rate_level_drive(env: np.ndarray, cfg: CochleaConfig) -> np.ndarray:
    """Logarithmic compression: level in dB mapped linearly onto [0, 1] between threshold and saturation."""
    level_db = 20.0 * np.log10(env + 1e-12)
    return np.clip((level_db - cfg.level_threshold_db) / cfg.dynamic_range_db, 0.0, 1.0)


def lif_spikes(drive: np.ndarray, cfg: CochleaConfig) -> tuple[np.ndarray, np.ndarray]:
    """Adaptive-threshold LIF neurons, one per channel, simulated in steps of ``cfg.dt``.

    Returns ``(times_s, units)`` sorted by time (then unit).
    """
    n_ch, n_steps = drive.shape
    decay_m = np.exp(-cfg.dt / cfg.tau_m)
    decay_a = np.exp(-cfg.dt / cfg.tau_a)
    ref_steps = int(round(cfg.t_ref / cfg.dt))
    v = np.zeros(n_ch)
    a = np.zeros(n_ch)
    refractory = np.zeros(n_ch, dtype=np.int64)
    current = cfg.i_max * drive
    times, units = [], []
    for t in range(n_steps):
        active = refractory == 0
        # exact integration of tau_m dv/dt = -v + I over one step with I held constant
        v = np.where(active, current[:, t] + (v - current[:, t]) * decay_m, 0.0)
        a *= decay_a
        fired = np.flatnonzero(active & (v >= 1.0 + a))
        if fired.size:
            times.append(np.full(fired.size, (t + 1) * cfg.dt))
            units.append(fired)
            v[fired] = 0.0
            a[fired] += cfg.beta
            refractory[fired] = ref_steps + 1
        refractory = np.maximum(refractory - 1, 0)
    if not times:
        return np.zeros(0), np.zeros(0, dtype=np.int64)
    return np.concatenate(times), np.concatenate(units)


# ----------------------------------------------------------------------------------------------------------------
# One utterance
# ----------------------------------------------------------------------------------------------------------------
def encode_utterance(audio: np.ndarray, cfg: CochleaConfig, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """Condition a synthesised word (trim, pre-emphasis, level, onset, noise) and convert it to spikes."""
    x = trim_silence(audio, cfg.fs, cfg.trim_db)
    x = np.append(x[0], x[1:] - cfg.preemphasis * x[:-1])
    x = x / np.sqrt(np.mean(x ** 2))
    onset = int(rng.uniform(*cfg.onset_range) * cfg.fs)
    total = int(cfg.max_duration * cfg.fs)
    length = min(total, onset + len(x) + int(0.05 * cfg.fs))
    signal = np.zeros(length)
    piece = x[: max(0, length - onset)]
    signal[onset: onset + len(piece)] = piece
    snr_db = rng.uniform(*cfg.snr_range_db)
    signal += rng.standard_normal(length) * 10.0 ** (-snr_db / 20.0)
    drive = rate_level_drive(band_envelopes(signal, cfg), cfg)
    return lif_spikes(drive, cfg)


def process_job(args: tuple[Job, CochleaConfig, str, int]) -> tuple[int, np.ndarray, np.ndarray]:
    """Worker: synthesise and encode one utterance. Deterministic given (seed, job.index)."""
    job, cfg, espeak, seed = args
    rng = np.random.default_rng([seed, job.index])
    spk = job.speaker
    rate, pitch = spk.rate, spk.pitch
    if job.repeat > 0:  # later repetitions of the same word: a slightly different tempo and pitch
        rate = int(round(rate * rng.uniform(0.93, 1.07)))
        pitch = int(np.clip(pitch + rng.integers(-4, 5), 0, 99))
    if job.label < 10:
        voice, text = f"{spk.english_voice}+{spk.variant}", ENGLISH_WORDS[job.label]
    else:
        voice, text = f"{GERMAN_VOICE}+{spk.variant}", GERMAN_WORDS[job.label - 10]
    audio = synthesize(espeak, text, voice, rate, pitch, cfg.fs)
    times, units = encode_utterance(audio, cfg, rng)
    return job.index, times, units


# ----------------------------------------------------------------------------------------------------------------
# Speakers and split
# ----------------------------------------------------------------------------------------------------------------
def make_speakers(n_speakers: int, test_fraction: float, seed: int) -> list[Speaker]:
    """Draw ``n_speakers`` voice configurations; test speakers use voice variants no training speaker uses.

    Variants are split per gender (``test_fraction`` of each gender's variants, at least one, held out). Speaker
    ids are 0..n_speakers-1, training speakers first.
    """
    rng = np.random.default_rng([seed, 0x5EED])
    n_test = int(round(n_speakers * test_fraction))
    n_train = n_speakers - n_test
    if n_train < 1 or n_test < 1:
        raise ValueError(f"--n-speakers {n_speakers} with --test-fraction {test_fraction} leaves an empty split")
    pools = {"train": [], "test": []}
    for gender, variants in VOICE_VARIANTS.items():
        order = [variants[i] for i in rng.permutation(len(variants))]
        k = max(1, int(round(len(order) * test_fraction)))
        pools["test"] += [(v, gender) for v in order[:k]]
        pools["train"] += [(v, gender) for v in order[k:]]
    speakers = []
    for split, count in (("train", n_train), ("test", n_test)):
        pool = [pools[split][i] for i in rng.permutation(len(pools[split]))]
        for j in range(count):
            variant, gender = pool[j % len(pool)]
            speakers.append(Speaker(
                id=len(speakers), variant=variant, gender=gender,
                english_voice=ENGLISH_VOICES[rng.integers(len(ENGLISH_VOICES))],
                rate=int(rng.integers(120, 201)), pitch=int(rng.integers(20, 81)), split=split))
    return speakers


# ----------------------------------------------------------------------------------------------------------------
# HDF5 output (SHD layout)
# ----------------------------------------------------------------------------------------------------------------
def write_shd_file(path: Path, samples: list[tuple[np.ndarray, np.ndarray, int, int]], speakers: list[Speaker],
                   attrs: dict) -> None:
    """Write samples ``(times, units, label, speaker_id)`` in SHD's layout::

        spikes/times        vlen float16, seconds          spikes/units   vlen uint16, 0..699
        labels              uint8                          extra/speaker  uint8 (speaker id per sample)
        extra/keys          bytes, class names (UTF-8)     extra/meta_info/{gender, age, body_height}
                                                             indexed by speaker id (all speakers of both splits)

    plus the snnkit extras ``extra/meta_info/{voice, rate, pitch}`` and root attributes describing the generator.
    """
    n = len(samples)
    # HDF5 is written to a scratch file and then moved into place by snnkit's atomic write: h5py writing into memory
    # (an io.BytesIO) lays the file out differently, and the bundled files are reproduced byte for byte this way.
    with tempfile.TemporaryDirectory() as scratch:
        tmp = Path(scratch) / path.name
        with h5py.File(tmp, "w") as f:
            times = f.create_dataset("spikes/times", (n,), dtype=h5py.vlen_dtype(np.float16))
            units = f.create_dataset("spikes/units", (n,), dtype=h5py.vlen_dtype(np.uint16))
            for i, (t, u, _, _) in enumerate(samples):
                times[i] = t.astype(np.float16)
                units[i] = u.astype(np.uint16)
            f.create_dataset("labels", data=np.array([s[2] for s in samples], dtype=np.uint8))
            f.create_dataset("extra/speaker", data=np.array([s[3] for s in samples], dtype=np.uint8))
            f.create_dataset("extra/keys", data=np.array([k.encode("utf-8") for k in CLASS_NAMES]))
            meta = f.create_group("extra/meta_info")
            meta.create_dataset("gender", data=np.array([s.gender.encode() for s in speakers]))
            # Synthetic voices have no age or body height; 0 marks "not applicable" (SHD stores real values).
            meta.create_dataset("age", data=np.zeros(len(speakers), dtype=np.uint8))
            meta.create_dataset("body_height", data=np.zeros(len(speakers), dtype=np.uint8))
            voice = [f"{s.english_voice}+{s.variant} / {GERMAN_VOICE}+{s.variant}".encode() for s in speakers]
            meta.create_dataset("voice", data=np.array(voice))
            meta.create_dataset("rate", data=np.array([s.rate for s in speakers], dtype=np.uint16))
            meta.create_dataset("pitch", data=np.array([s.pitch for s in speakers], dtype=np.uint8))
            for key, value in attrs.items():
                f.attrs[key] = value
        atomic_write_bytes(path, tmp.read_bytes())


# ----------------------------------------------------------------------------------------------------------------
# Main
# ----------------------------------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--out-dir", type=Path, default=DEFAULT_OUT_DIR, help="where to write the two .h5 files")
    p.add_argument("--n-speakers", type=int, default=64, help="number of synthetic speakers (both splits)")
    p.add_argument("--test-fraction", type=float, default=0.2, help="fraction of speakers in the test split")
    p.add_argument("--repeats", type=int, default=1, help="repetitions of each word per speaker")
    p.add_argument("--seed", type=int, default=0, help="seed of every random choice")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="worker processes")
    p.add_argument("--espeak", default="espeak-ng", help="espeak-ng executable (name on PATH or a path)")
    p.add_argument("--limit", type=int, default=None,
                   help="only encode the first N utterances of each split (a quick trial run)")
    return p.parse_args(argv)


def canonical_command(args: argparse.Namespace) -> str:
    """The command line that reproduces the data (options that only affect where/how fast are left out)."""
    cmd = (f"python scripts/make_spoken_digits.py --n-speakers {args.n_speakers} --test-fraction "
           f"{args.test_fraction} --repeats {args.repeats} --seed {args.seed}")
    return cmd + (f" --limit {args.limit}" if args.limit is not None else "")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.n_speakers > 256:
        raise SystemExit("--n-speakers must be <= 256 (speaker ids are stored as uint8)")
    if args.repeats < 1:
        raise SystemExit("--repeats must be >= 1")
    if not 0.0 < args.test_fraction < 1.0:
        raise SystemExit("--test-fraction must be between 0 and 1")
    espeak = find_espeak(args.espeak)
    check_voices(espeak)
    cfg = CochleaConfig()
    speakers = make_speakers(args.n_speakers, args.test_fraction, args.seed)
    jobs: list[Job] = []
    for speaker in speakers:
        for label in range(len(CLASS_NAMES)):
            for repeat in range(args.repeats):
                jobs.append(Job(index=len(jobs), label=label, speaker=speaker, repeat=repeat))
    if args.limit is not None:  # a quick trial run: the first N utterances of each split
        jobs = [j for split in ("train", "test") for j in [j for j in jobs if j.speaker.split == split][: args.limit]]

    start = time.perf_counter()
    results: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    work = [(job, cfg, espeak, args.seed) for job in jobs]
    report_every = max(1, len(jobs) // 20)
    with (multiprocessing.Pool(args.workers) if args.workers > 1 else _SerialPool()) as pool:
        for done, (index, times, units) in enumerate(pool.imap_unordered(process_job, work, chunksize=4), 1):
            results[index] = (times, units)
            if done % report_every == 0 or done == len(jobs):
                print(f"  {done}/{len(jobs)} utterances ({time.perf_counter() - start:.0f} s)", flush=True)

    args.out_dir.mkdir(parents=True, exist_ok=True)
    attrs = {
        "description": "snnkit spoken digits: espeak-ng speech -> 700-channel gammatone cochlea -> adaptive LIF "
                       "spikes, in the layout of the Spiking Heidelberg Digits (SHD).",
        "generator": "scripts/make_spoken_digits.py",
        "command": canonical_command(args),
        "seed": args.seed,
        "espeak_ng_version": espeak_version(espeak),
        "cochlea_config": json.dumps(asdict(cfg)),
        "licence": "espeak-ng output generated for snnkit; distributed under the snnkit licence (MIT).",
    }
    order_rng = np.random.default_rng([args.seed, 0x0DE7])
    for split in ("train", "test"):
        split_jobs = [j for j in jobs if j.speaker.split == split]
        split_jobs = [split_jobs[i] for i in order_rng.permutation(len(split_jobs))]  # mix classes and speakers
        samples = [(*results[j.index], j.label, j.speaker.id) for j in split_jobs]
        path = args.out_dir / f"spoken_digits_{split}.h5"
        write_shd_file(path, samples, speakers, {**attrs, "split": split})
        counts = np.array([len(s[0]) for s in samples]) if samples else np.zeros(1)
        n_spk = len({j.speaker.id for j in split_jobs})
        print(f"{path}: {len(samples)} samples, {n_spk} speakers, {counts.mean():.0f} spikes/sample "
              f"(min {counts.min()}, max {counts.max()}), {path.stat().st_size / 1e6:.2f} MB")
    print(f"done in {time.perf_counter() - start:.0f} s")
    return 0


class _SerialPool:
    """Stand-in for ``multiprocessing.Pool`` with ``--workers 1`` (easier debugging, no subprocesses)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def imap_unordered(self, fn, iterable, chunksize=1):
        return map(fn, iterable)


if __name__ == "__main__":
    sys.exit(main())
