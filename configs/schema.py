"""The stages' configuration schema.

Every tunable of every stage lives here, with its default; a YAML file under ``configs/`` fills it and
``stj ... --set section.key=value`` overrides single values. Unknown keys are errors (``extra="forbid"``).
The offline catalog's switches are not here: its section has its own schema (``catalog.settings``), which
the ``stj`` command composes with this one (``flows.settings.RunConfig``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

DEFAULT_QUERIES = {"saree": ["saree"], "trousers": ["men trousers"], "jeans": ["men jeans"]}  # the mission's classes
CLASS_NAMES_DEFAULT = tuple(DEFAULT_QUERIES)
Backbone = Literal["resnet50", "efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ProjectConfig(_Strict):
    """Where generated state goes and the seed everything derives from."""

    data_dir: Path = Field(
        default=Path("data"), description="folder of the photos, manifest, split, embedding cache and data reports"
    )
    seed: int = Field(
        default=42, description="seeds every random choice (weights init, folds, samples): a run is repeatable"
    )


class ClassQueries(_Strict):
    """Search queries whose results are labelled with one class."""

    queries: list[str] = Field(min_length=1)


class ScrapeConfig(_Strict):
    """How search pages and product photos are fetched (``scraper``)."""

    base_url: str = Field(
        default="https://www.amazon.in", description="the site searched (a local catalog's URL for the demo)"
    )
    search_path: str = Field(default="/s", description="path of the search page on base_url (?k=<query>&page=<n>)")
    classes: dict[str, ClassQueries] = Field(
        default_factory=lambda: {label: ClassQueries(queries=list(q)) for label, q in DEFAULT_QUERIES.items()},
        description="the classes, in order, each with its search queries",
    )
    max_pages: int = Field(default=7, ge=1, le=400, description="search result pages read per query")
    max_images_per_class: int | None = Field(
        default=None, ge=1, description="stop a class at this many photos (null: every page's photos)"
    )
    concurrency: int = Field(default=4, ge=1, le=64, description="photos downloaded at once")
    delay_s: float = Field(default=1.0, ge=0, description="minimum seconds between requests to one host")
    per_host_concurrency: int = Field(
        default=2, ge=1, le=64, description="requests in flight at once to one host, over all threads and Dask tasks"
    )
    autothrottle: bool = Field(
        default=True,
        description="adapt each host's delay to its latency (Scrapy's AutoThrottle), never below delay_s",
    )
    autothrottle_target_concurrency: float = Field(
        default=1.0, gt=0, description="AutoThrottle's aim: the delay goes to latency / this"
    )
    max_delay_s: float = Field(default=60.0, gt=0, description="AutoThrottle's ceiling on one host's delay")
    timeout_s: float = Field(default=20.0, gt=0, description="seconds before a request is given up (then retried)")
    retries: int = Field(default=3, ge=0, le=10, description="retries of a failed request (backing off)")
    obey_robots: bool = Field(default=True, description="read robots.txt and skip what it disallows")
    skip_sponsored: bool = Field(default=True, description="leave out results marked sponsored")
    min_side: int = Field(default=100, ge=1, description="photos with a shorter side are rejected (pixels)")
    max_bytes: int = Field(default=10_000_000, ge=1024, description="photos larger than this are rejected (bytes)")
    fetcher: Literal["requests", "selenium", "auto"] = Field(
        default="auto", description="auto: requests, switching a query to the browser on a robot check"
    )
    robot_backoff_s: float = Field(default=30.0, ge=0, description="pause after a robot check")
    near_duplicate_distance: int = Field(default=22, ge=-1, le=256, description="bits of a 256-bit pHash; -1: off")
    chromium_path: str = Field(
        default="/usr/bin/chromium", description="the Chromium binary, for a search page that needs a browser"
    )
    chromedriver_path: str = Field(
        default="/usr/bin/chromedriver", description="the chromedriver Selenium drives Chromium with"
    )
    user_agent: str = Field(
        default="Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0 Safari/537.36",
        description="the User-Agent of every request",
    )

    @field_validator("classes")
    @classmethod
    def _at_least_two_classes(cls, value: dict[str, ClassQueries]) -> dict[str, ClassQueries]:
        if len(value) < 2:
            raise ValueError("needs at least two classes")
        return value


class SplitConfig(_Strict):
    """The train/validation/test split, decided per near-duplicate group by a hash (``training.splitting.split``)."""

    test_size: float = Field(default=0.2, gt=0, lt=1, description="fraction of each class in the test part")
    val_size: float = Field(default=0.1, gt=0, lt=1, description="fraction of the training part")
    seed: int = Field(default=42, description="seeds the hash that puts each near-duplicate group on a side")
    exclude_label_issues: bool = Field(
        default=False, description="leave out the photos the last run listed in label_issues.csv"
    )


class LabelsConfig(_Strict):
    """Out-of-fold label checking on the cached embeddings (``training.labels.label_issues``, ``training.fitting.crossval``)."""

    enabled: bool = Field(default=True, description="run the k-fold label check (cleanlab) after training")
    folds: int = Field(default=5, ge=2, le=20, description="k of the k-fold run on the training part")
    gallery_size: int = Field(default=16, ge=1, le=64, description="photos in the label-issue gallery")


class OodConfig(_Strict):
    """ "None of these": each model's out-of-distribution index (``core.ood``), built from the training
    photos' features and calibrated on the validation photos', logged with the model; the server flags a
    photo unlike the training photos."""

    enabled: bool = Field(
        default=True, description="build and log the index with each model (a version without one: no in_distribution)"
    )
    reference_per_class: int = Field(
        default=1000, ge=1, le=100_000, description="training photos per class kept as the index's reference"
    )
    k: int = Field(default=5, ge=1, le=100, description="a photo's score is its distance to the k-th nearest reference")
    percentile: float = Field(
        default=99.0, gt=50, le=100, description="threshold: this percentile of the validation photos' scores"
    )


class MonitorConfig(_Strict):
    """Watching live traffic: the server's prediction log (``serving.prediction_log``) and ``stj monitor``
    (``serving.monitor``, ``serving.drift``)."""

    log_predictions: bool = Field(default=True, description="append each answered prediction to the log")
    log_sample: float = Field(default=1.0, gt=0, le=1, description="share of predictions logged (drawn at random)")
    log_queue: int = Field(
        default=4096, ge=1, le=1_000_000, description="rows waiting to be written; beyond: dropped and counted"
    )
    retention_days: float = Field(default=30.0, gt=0, description="rows older than this are deleted (hourly)")
    window_hours: float = Field(default=24.0, gt=0, description="`stj monitor` judges the log's last this many hours")
    min_predictions: int = Field(default=30, ge=2, description="a window with fewer of the champion's is not judged")
    max_rows: int = Field(
        default=1000,
        ge=10,
        le=2000,  # the check holds a few (2 x max_rows)^2 float32 matrices: ~200 MB at 2 000
        description="embeddings a side the embedding check compares (a seeded sample of the window's and the "
        "baseline's); the other checks read every row",
    )
    drift_p_value: float = Field(default=0.05, gt=0, lt=1, description="a check drifts below this p-value")
    drift_distance: float = Field(
        default=0.1,
        gt=0,
        description="a check drifts at this distance (Jensen-Shannon, normed Wasserstein) on big baselines",
    )
    drift_share: float = Field(default=0.5, gt=0, le=1, description="the window drifts when this share of checks do")
    report_dir: Path = Field(default=Path("monitor-reports"), description="where `stj monitor` writes its HTML reports")
    experiment: str = Field(default="stj-monitor", min_length=1, description="MLflow experiment of the monitor's runs")
    on_drift_deployment: str | None = Field(
        default=None,
        pattern=r"^[^/]+/[^/]+$",
        description="Prefect deployment (flow/deployment) started when drift is found, e.g. stj-pipeline/stj-team",
    )


class ValidationConfig(_Strict):
    """Checks of each run's data before training (``training.validation.validate``): absolute floors on every run, and
    changes against the last successful run's statistics. A failed check stops the pipeline before training."""

    enabled: bool = Field(default=True, description="run the data checks; false: statistics written, nothing checked")
    min_photos_per_class: int = Field(default=3, ge=1, description="photos of a class usable for training")
    min_sample: int = Field(default=10, ge=1, description="downloads or pages a rate needs before it is judged")
    max_rejected_rate: float = Field(default=0.5, ge=0, le=1, description="of a class's photos downloaded this run")
    max_robot_check_rate: float = Field(default=0.5, ge=0, le=1, description="of search pages fetched")
    max_error_rate: float = Field(default=0.2, ge=0, le=1, description="failed pages and photos, of pages fetched")
    max_class_drop: float = Field(
        default=0.5, ge=0, le=1, description="fraction of a class's search results (vs the last run) that may vanish"
    )
    max_rate_increase: float = Field(
        default=0.2, ge=0, le=1, description="how much a rejection, robot-check, error or duplicate rate may rise"
    )
    max_size_shift: float = Field(
        default=0.5, ge=0, description="relative change of the new photos' median width or height"
    )


class FineTuneConfig(_Strict):
    """Optional second stage: unfreeze the top of the base and train on augmented images (``training.fitting.finetune``)."""

    enabled: bool = Field(default=False, description="run the fine-tuning stage after the frozen-base head")
    unfreeze_layers: int = Field(
        default=10,
        ge=1,
        description="top weighted layers of the base made trainable (BatchNorm among them stays frozen)",
    )
    learning_rate: float = Field(default=1e-5, gt=0, description="learning rate of the fine-tuning stage")
    epochs: int = Field(
        default=5, ge=1, description="epochs of the fine-tuning stage (early stopping on validation loss)"
    )
    patience: int = Field(
        default=2, ge=1, description="epochs without a better validation loss before fine-tuning stops"
    )
    batch_size: int = Field(default=16, ge=1, description="photos per fine-tuning step")
    cutmix: bool = Field(default=False, description="CutMix augmentation while fine-tuning")


class TrainConfig(_Strict):
    """The classifier: a frozen base (ResNet50 by default) plus a dense head (``training``)."""

    backbone: Backbone = Field(default="resnet50", description="the frozen base (core.model.backbones)")
    compare_backbones: list[Backbone] = Field(
        default_factory=list, description="also trained, as sibling runs; the best by validation goes to the gate"
    )
    image_size: int = Field(default=224, ge=32, le=1024, description="side the photos are resized to (pixels, square)")
    weights: str = Field(default="imagenet", description="imagenet | none | path to a .h5/.weights.h5 file")
    weights_fallback: Literal["none", "error"] = Field(
        default="error",
        description="when train.weights cannot be had offline: error stops the run, none trains from random weights (logged and tagged)",
    )
    epochs: int = Field(default=25, ge=1, description="most epochs of the head (early stopping on validation loss)")
    batch_size: int = Field(default=32, ge=1, description="photos per training step of the head")
    learning_rate: float = Field(default=1e-3, gt=0, description="learning rate of the head")
    patience: int = Field(
        default=5,
        ge=1,
        description="epochs without a better validation loss before training stops (the best checkpoint is kept)",
    )
    dense_units: tuple[int, int] = Field(default=(256, 128), description="units of the head's two dense layers")
    dropout: tuple[float, float] = Field(
        default=(0.3, 0.2), description="dropout after each of the head's dense layers"
    )
    embed_batch_size: int = Field(default=16, ge=1, description="photos per batch when the base embeds the data set")
    runtime: Literal["auto", "openvino", "tensorflow"] = Field(
        default="auto",
        description="runtime that embeds and serves: auto measures and picks; openvino or tensorflow forced",
    )
    precision: Literal["auto", "int8", "bf16", "f32"] = Field(
        default="auto",
        description="OpenVINO's: auto = the fastest measured here within precision_tolerance of f32's val accuracy",
    )
    precision_tolerance: float = Field(
        default=0.02, ge=0, le=1, description="validation accuracy a faster precision may lose against f32"
    )
    int8_calibration_images: int = Field(
        default=32, ge=4, le=512, description="training photos that calibrate int8 quantisation"
    )
    finetune: FineTuneConfig = FineTuneConfig()

    @field_validator("weights")
    @classmethod
    def _weights_known(cls, value: str) -> str:
        if value in ("imagenet", "none") or value.endswith((".h5", ".keras")):
            return value
        raise ValueError("must be 'imagenet', 'none' or a path to a .h5 weights file")

    @field_validator("dropout")
    @classmethod
    def _dropout_range(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not all(0 <= d < 1 for d in value):
            raise ValueError("dropout rates must be in [0, 1)")
        return value


class TrackingConfig(_Strict):
    """Where runs and models are recorded (``training.runs.track``, ``training.publishing.publish``)."""

    uri: str = Field(
        default="sqlite:///mlflow.db",
        description="MLflow tracking store: a sqlite:/// file, a postgresql:// database or an http(s):// server",
    )
    artifact_dir: Path = Field(default=Path("mlartifacts"), description="where a file-based store keeps artifacts")
    experiment: str = Field(default="stj", description="MLflow experiment of the pipeline's runs")
    model_name: str = Field(default="stj-classifier", description="registered model name of the classifier")
    alias: str = Field(default="champion", description="registry alias the server follows and the gate moves")
    imagenet_model: str | None = Field(
        default="imagenet-classifier", description="registered ImageNet top-5 model (EfficientNet-Lite0); null: none"
    )
    ui_url: str = Field(default="http://127.0.0.1:5000", description="the MLflow UI, for links in run summaries")
    gate_margin: float = Field(default=0.0, ge=-1, le=1, description="macro-F1 a new model must add")
    gate_floor: float = Field(default=0.0, ge=0, le=1, description="macro-F1 below which nothing is promoted")
    gate_class_tolerance: float = Field(
        default=0.05, ge=0, le=1, description="how much any one class's F1 may drop against the champion's"
    )


class ServeConfig(_Strict):
    """The prediction endpoint (``serving``)."""

    host: str = Field(
        default="127.0.0.1",
        description="address the server listens on (0.0.0.0: every interface; see the exposure check)",
    )
    port: int = Field(default=8000, ge=0, le=65535, description="port the server listens on (0: any free one, printed)")
    workers: int = Field(default=1, ge=1, le=16, description="gunicorn worker processes (each loads the models)")
    threads: int = Field(default=4, ge=1, le=64, description="request threads per worker")
    max_upload_bytes: int = Field(
        default=10_000_000, ge=1024, description="largest upload accepted (bytes); larger: 413"
    )
    top_k: int = Field(default=3, ge=1, description="classes in each answer's top_k")
    model_uri: str | None = Field(default=None, description="defaults to models:/<model_name>@<alias>")
    runtime: Literal["auto", "openvino", "tensorflow"] = Field(
        default="auto", description="runtime that serves: auto measures and picks; openvino or tensorflow forced"
    )
    timeout_s: int = Field(default=120, ge=5, description="gunicorn worker timeout (model load included)")
    max_batch: int = Field(default=16, ge=1, le=256, description="micro-batch size limit")
    max_wait_ms: float = Field(default=4.0, ge=0, le=1000, description="how long a micro-batch waits to fill")
    queue_size: int = Field(default=64, ge=1, description="requests waiting beyond this get 503 + Retry-After")
    max_files: int = Field(default=16, ge=1, le=256, description="files per /predict/batch request")
    min_side: int = Field(default=16, ge=1, description="smaller images are refused (422)")
    reload_interval_s: float = Field(default=10.0, ge=0, description="how often the alias is checked; 0: never")
    pinned_loads_per_minute: int = Field(
        default=6, ge=0, description="loads of versions pinned by ?version= per worker per minute; beyond: 429"
    )
    database_url: str = Field(
        default="sqlite:///history.db",
        pattern=r"^(sqlite:///|postgresql(\+\w+)?://)",
        description="accounts, API tokens, sessions' secret, login attempts and the history: a SQLite file "
        "(sqlite:///<path>) or PostgreSQL (postgresql://user@host:port/name, the password from PGPASSWORD or "
        "~/.pgpass), which replicas share; it replaces serve.history_path",
    )
    proxy: Literal["nginx", "none"] = Field(
        default="nginx", description="nginx buffers each request in front of gunicorn; none: gunicorn faces clients"
    )
    client_timeout_s: float = Field(
        default=10.0, gt=0, le=300, description="nginx drops a client that sends nothing for this long"
    )
    decode_concurrency: int = Field(default=2, ge=1, le=64, description="uploads decoded at once per worker")
    auth: Literal["none", "optional", "required"] = Field(
        default="optional",
        description="none: no accounts, one shared history (private servers); optional: anyone may predict, "
        "a history needs an account; required: everything but sign-in and health needs an account",
    )
    signup: bool = Field(default=True, description="whether visitors may create accounts")
    allowed_hosts: list[str] | None = Field(
        default=None,
        min_length=1,
        description="Host names answered (.example.com: and its subdomains); default: loopback names, serve.host "
        "and public_url's host",
    )
    shadow_share: float = Field(
        default=0.25,
        ge=0,
        le=1,
        description="share of predictions also scored by @challenger off the client's path when there is one; 0: never",
    )
    shadow_queue: int = Field(
        default=16, ge=1, le=1024, description="photos waiting for the challenger; beyond: dropped and counted"
    )
    shadow_report_s: float = Field(
        default=30.0, gt=0, description="how often each worker records the challenger's tally in the registry"
    )
    shadow_idle_ms: float = Field(
        default=20.0,
        ge=0,
        le=10_000,
        description="how long a worker must have had no request before its challenger computes (ms); a request "
        "pauses it at once",
    )
    browser_model: bool = Field(
        default=True, description="offer the served model to the page (ONNX) so it classifies when the server can't"
    )
    browser_model_dir: Path = Field(
        default=Path("browser-models"), description="where each served version's ONNX export is kept"
    )
    public_url: str | None = Field(
        default=None, description="the address users reach the server at (https:// makes session cookies Secure)"
    )

    @field_validator("public_url")
    @classmethod
    def _public_url_http(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value


class ReleaseConfig(_Strict):
    """How a model version is checked in a real server before an alias moves to it (``serving.infra_check``)."""

    infra_check: bool = Field(default=True, description="start the version in a real `stj serve` before any alias move")
    canary_size: int = Field(default=64, ge=1, le=2000, description="test photos sent to that server (the gate's)")
    min_agreement: float = Field(
        default=0.99, ge=0, le=1, description="share of canary photos whose top-1 must match the in-process one"
    )
    prob_tolerance: float = Field(default=1e-3, gt=0, le=1, description="largest probability difference allowed")
    p95_budget_ms: float = Field(default=5000.0, gt=0, description="95th percentile of the canary answers' latency")
    ready_timeout_s: float = Field(default=300.0, gt=0, description="how long the server may take to load the model")
    challenger_alias: str = Field(
        default="challenger", min_length=1, description="the alias of the version scored in shadow by every replica"
    )
    shadow_min_photos: int = Field(
        default=200,
        ge=1,
        description="photos the challenger must have scored in shadow before `stj promote challenger`",
    )
    shadow_min_agreement: float = Field(
        default=0.9, ge=0, le=1, description="share of those on which it must agree with the champion's top-1"
    )


class NotifyConfig(_Strict):
    """Where a pipeline run reports a failed stage or a rejected model (``flows.notify``)."""

    webhook_url: str | None = Field(default=None, description="gets a JSON POST on a failed stage or a rejected model")
    timeout_s: float = Field(default=5.0, gt=0, le=60, description="seconds before the webhook call is given up")

    @field_validator("webhook_url")
    @classmethod
    def _http_only(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value


class Config(_Strict):
    """The whole STJ configuration."""

    project: ProjectConfig = ProjectConfig()
    scrape: ScrapeConfig = ScrapeConfig()
    split: SplitConfig = SplitConfig()
    validation: ValidationConfig = ValidationConfig()
    labels: LabelsConfig = LabelsConfig()
    ood: OodConfig = OodConfig()
    monitor: MonitorConfig = MonitorConfig()
    train: TrainConfig = TrainConfig()
    tracking: TrackingConfig = TrackingConfig()
    serve: ServeConfig = ServeConfig()
    release: ReleaseConfig = ReleaseConfig()
    notify: NotifyConfig = NotifyConfig()

    @property
    def class_names(self) -> list[str]:
        """Class labels in a fixed order (the order of ``scrape.classes``)."""
        return list(self.scrape.classes)

    @property
    def model_uri(self) -> str:
        """The registry URI the server loads."""
        return self.serve.model_uri or f"models:/{self.tracking.model_name}@{self.tracking.alias}"
