"""`SelectConfig`: every knob of a Stage II selection round, as flat data (no torch: the Active selection page reads
it when it opens). `salad select` takes one flag per field; its help is the comment on the field's line."""

from __future__ import annotations

from dataclasses import dataclass

from salad_core.errors import InputError
from salad_core.flags import to_argv

STRATEGIES = ("active", "random")  # active: clusters by P_target; random: texts uniformly from the whole corpus
SCORES = ("m", "distill")  # which misalignment drives P_target (select/probing.py)
KMEANS = ("balanced", "faiss")
DEFAULT_EMBEDDER = "all-MiniLM-L6-v2"


@dataclass
class SelectConfig:
    from_run: str  # the Stage I (or Stage II) training run whose final model scores the clusters
    gamma: float = 5.0  # P_target ∝ P_web · M^gamma; 0 = uniform over the corpus's clusters
    budget: str = "10%"  # hours of synthetic audio ("0.2", "0.2h", "720s") or a share of the natural speech ("1%")
    strategy: str = "active"  # active (clusters by P_target) | random (texts uniformly from the whole corpus)
    clusters: int = 0  # K; 0 = 128 for corpora of 17,920+ texts, else one cluster per 140 texts (at least 4)
    probes: int = 8  # probe documents per cluster
    score: str = "m"  # m | distill: which misalignment drives P_target (both are recorded)
    cer_max: float = 0.4  # clusters whose probe speech the ASR reads back worse than this are dropped
    asr: str = "whisper-base"  # reads the probes back (tiny.en loops on some of the mini world's clusters)
    voice: str = "espeak:en-us"  # TTS voice of the synthetic speech; "a,b,c": selected documents take them in turn
    speed: float = 1.0  # speaking rate of the TTS voice (1.0: its own)
    pool: str = ""  # texts to select from: "" = the world's pool; hf:ORG/NAME[:CONFIG][@SPLIT], parquet/JSONL glob, folder
    pool_column: str = "text"  # the text column of an hf, parquet or JSONL pool
    segment_words: int = 160  # pool documents are cut into pieces of at most this many words
    embedder: str = DEFAULT_EMBEDDER  # sentence-transformers model (name or folder), or static:NAME (model2vec)
    kmeans: str = "balanced"  # centroids by balanced k-means | faiss (FAISS k-means); both then balanced on the pool
    cluster_sample: int = 100_000  # documents the centroids are fitted on (the whole pool when it is smaller)
    map_points: int = 3000  # pool documents placed on the UMAP cluster map
    ray_address: str = ""  # a Ray cluster to join (ray://HOST:10001 or HOST:6379); "" = Ray on this machine's cores
    seed: int = 0  # seeds the clustering, the probes and the draw: same config and seed, same round

    def to_argv(self) -> list[str]:
        """The `salad select` flags that rebuild this config: --from, then each field that differs from its default."""
        return ["--from", self.from_run, *to_argv(self, SelectConfig(self.from_run), skip=("from_run",))]

    def voices(self) -> tuple[str, ...]:
        return tuple(v.strip() for v in self.voice.split(",") if v.strip())

    def __post_init__(self) -> None:
        if not self.voices():
            raise InputError(f"voice names no TTS voice: {self.voice!r}. Fix: e.g. --voice espeak:en-us")
        if self.strategy not in STRATEGIES:
            raise InputError(f"strategy must be one of {STRATEGIES}, got {self.strategy!r}")
        if self.score not in SCORES:
            raise InputError(f"score must be one of {SCORES}, got {self.score!r}")
        if self.kmeans not in KMEANS:
            raise InputError(f"kmeans must be one of {KMEANS}, got {self.kmeans!r}")
        if self.gamma < 0 or self.probes < 1 or self.clusters < 0:
            raise InputError("gamma must be >= 0, probes >= 1 and clusters >= 0 (0 = automatic)")
        if self.segment_words < 1 or self.cluster_sample < 1 or self.map_points < 0:
            raise InputError("segment_words and cluster_sample must be >= 1, map_points >= 0")


