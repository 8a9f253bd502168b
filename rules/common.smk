# Config validation, wildcard pinning and the config helpers every rule's params use.
import dataclasses
from types import SimpleNamespace

from interplab.config import load_schema, validate_config

try:
    _validated = validate_config(
        config,
        load_schema(Path(workflow.basedir) / "configs" / "schema.yaml"),
        source="config",
    )
except ConfigError as error:
    raise WorkflowError(f"Invalid configuration. {error}") from None
config.clear()
config.update(_validated)

RESULTS = "results"
LOGS = "results/logs"
BENCH = "results/benchmarks"

localrules:
    all,

# The report's sections, in pipeline order (Snakemake sorts categories by name).
REPORT = {
    "toy": "1. Toy models (KD theorem)",
    "lm": "2. Language-model teacher",
    "sae": "3. SAEs on the language model",
    "sizes": "4. Dictionary sizes (seed 003)",
    "distill": "5. Distilled students and probes",
    "grok": "6. Grokking (Camelyon17)",
    "interventions": "7. Interventions on the grokking runs",
}

# Final targets per stage: `all` builds those of the enabled stages, `all_<stage>` one stage alone
# (the DVC stages in dvc.yaml call those).
STAGE_TARGETS = {}


def register_targets(stage, paths):
    STAGE_TARGETS.setdefault(stage, []).extend(paths)


def all_targets():
    return [path for stage in config["stages"] for path in STAGE_TARGETS.get(stage, [])]


def stage_enabled(stage):
    return stage in config["stages"]


# Scheduling. The language-model chain (tokenizer → teacher → caches → SAEs → KD) is the DAG's
# longest path; without priorities Snakemake fills two cores with toy, grokking and distillation jobs
# first and starts the chain minutes late. Higher runs first among ready jobs; ties keep the DAG order.
PRIORITY = {"teacher": 50, "cache": 40, "sae": 30, "kd": 20}


def by_attempt(base):
    """A resource that grows with each retry (`retries:` in the SLURM profile): base × attempt."""

    def scaled(wildcards, attempt):
        return base * attempt

    return scaled


def as_params(obj):
    """A dataclass as the plain values Snakemake records with a job, so changing any of them reruns it
    (an object param is stored as 'unrepresentable' and its changes go unseen)."""
    return dataclasses.asdict(obj)


def pinned(values):
    """A wildcard regex matching exactly the given values (fast, unambiguous DAG building)."""
    return "|".join(sorted({str(v).replace(".", r"\.") for v in values}))


def figure_outputs(folder, figures, stage, subcategory=None):
    """One figure job's outputs: each PNG (in the report, with its caption report/{stage}/figures/{fig}.rst)
    and its PDF twin. A job draws all of a family's figures, so Python and matplotlib start once."""
    return {
        "png": [report(f"{folder}/{fig}.png", caption=f"../report/{stage}/figures/{fig}.rst",
                       category=REPORT[stage], subcategory=subcategory) for fig in figures],
        "pdf": [f"{folder}/{fig}.pdf" for fig in figures],
    }


# ---- Experiment 1: the toy grid ----------------------------------------------------------------------
from interplab.toy import grid as toy_grid

TOY_RUNS = toy_grid(config["toy"])
TOY_FIGURES = ("fig1_loss_floor_curves", "fig5_config_heatmap", "fig8_floor_vs_dstar", "fig9_sparsity_effect")

def toy_run_params(wildcards):
    return as_params(TOY_RUNS[wildcards.run])


# ---- Experiment 2: the language model (None without one) ---------------------------------------------
from interplab.teacher.config import local_checkpoint_dir, revision_step
from interplab.teacher.plan import MODEL_SOURCES, lm_plan, stream_settings

# `model.source` values other than local / hf (e.g. a synthetic activation source) need no LM.
LM = None
if config["model"]["source"] in MODEL_SOURCES:
    try:
        LM = lm_plan(config["model"])
    except ValueError as error:
        raise WorkflowError(f"Invalid configuration. config: {error}") from None




def teacher_dir(model):
    return f"{RESULTS}/teacher/{model}"


def teacher_checkpoint_dirs(model):
    """Every checkpoint the local teacher saves (step0 … final), as HF directories."""
    return [str(local_checkpoint_dir(teacher_dir(model), label)) for label in LM.checkpoints]


def streams_tokenizer(wildcards):
    return {"tokenizer": f"{teacher_dir(wildcards.model)}/tokenizer"} if LM.source == "local" else {}


# ---- Experiment 2: activation caches -----------------------------------------------------------------
from interplab.activations import layer_dirname


def cache_dir(model, ckpt, layer):
    """The cache directory of one layer: what SAE rules take as input."""
    return f"{RESULTS}/cache/{model}/{ckpt}/{layer_dirname(layer)}"


def cache_inputs(wildcards):
    inputs = {"streams": f"{RESULTS}/tokens/{wildcards.model}/streams.safetensors",
              "record": f"{RESULTS}/tokens/{wildcards.model}/streams.json"}
    if LM.source == "local":
        inputs["checkpoint"] = str(local_checkpoint_dir(teacher_dir(wildcards.model), wildcards.ckpt))
    return inputs


# ---- Experiment 2: SAE training plan -----------------------------------------------------------------
from interplab.sae.export import saelens_usage
from interplab.sae.plan import SYNTHETIC_CKPT, sae_plan, synthetic_config

try:
    SAE = sae_plan(config)
except ValueError as error:
    raise WorkflowError(f"Invalid configuration. config: {error}") from None
SAE_LAYERS = [f"{layer:02d}" for layer in SAE.layers]
SAE_DIR = f"{RESULTS}/sae/{{trial}}/{{model}}/{{ckpt}}"
# The sae settings a training job's numbers depend on (threads never change them): every group job's
# params, and the base of the sizes stage's.
SAE_TRAINING = {key: value for key, value in config["sae"].items() if key != "threads"}


def sae_outputs(trial, model, ckpt, layer):
    """Every file one training job writes (the snapshot folders, the .pt files, the log)."""
    base = f"{RESULTS}/sae/{trial}/{model}/{ckpt}"
    return {
        "cfg": [f"{base}/L{layer}/{s}/cfg.json" for s in SAE.snapshots],
        "weights": [f"{base}/L{layer}/{s}/sae_weights.safetensors" for s in SAE.snapshots],
        "pt": [f"{base}/sae_layer{layer}_{s}.pt" for s in SAE.snapshots],
        "log": f"{base}/L{layer}/training_log.csv",
    }


def sae_group_jobs(group):
    """(trial, layer) of every SAE one group job trains."""
    return [(trial, f"{layer:02d}") for trial in SAE.trials for layer in SAE.groups[group]]


def sae_group_outputs(group):
    """Every file one group job writes, per kind, over its trials × layers ({model}, {ckpt} wildcards)."""
    outputs = [sae_outputs(trial, "{model}", "{ckpt}", layer) for trial, layer in sae_group_jobs(group)]
    return {"cfg": [p for o in outputs for p in o["cfg"]], "weights": [p for o in outputs for p in o["weights"]],
            "pt": [p for o in outputs for p in o["pt"]], "log": [o["log"] for o in outputs]}


def sae_group_members(group):
    """What the job script needs per SAE: where its snapshots, .pt files, log and work dir go."""

    def members(wildcards):
        listed = []
        for trial, layer in sae_group_jobs(group):
            out = sae_outputs(trial, wildcards.model, wildcards.ckpt, layer)
            listed.append({"trial": trial, "layer": int(layer), "log": out["log"],
                           "snapshot_dirs": [str(Path(p).parent) for p in out["cfg"]], "pt": out["pt"],
                           "work_dir": f"{RESULTS}/sae/{trial}/{wildcards.model}/{wildcards.ckpt}/L{layer}/.train"})
        return listed

    return members


def sae_training_inputs(layers):
    """What a training job over these layers reads: their caches, or the LM and its tokens (stream)."""

    def inputs(wildcards):
        if SAE.source == "stream":
            return cache_inputs(wildcards)
        return {"cache": [cache_dir(wildcards.model, wildcards.ckpt, layer) for layer in layers]}

    return inputs


def sae_stream_params():
    """The LM settings a streaming job's numbers depend on (None when the SAEs read caches)."""
    if SAE.source != "stream":
        return None
    return {"source": LM.source, "name": LM.name, "dtype": config["model"]["dtype"],
            "batch_size": config["model"]["batch_size"], "train_tokens": config["cache"]["train_tokens"]}


def sae_saelens_metadata(wildcards):
    """What an export's cfg.json tells SAELens about the model (exactly these values, so only a change
    to them reruns the job)."""
    return saelens_usage(config["model"], wildcards.ckpt)


def sae_cache_input(wildcards):
    return cache_dir(wildcards.model, wildcards.ckpt, int(wildcards.layer))


def sae_snapshot_dirs(wildcards):
    return [str(Path(p).parent) for p in sae_outputs(wildcards.trial, wildcards.model, wildcards.ckpt, wildcards.layer)["cfg"]]


def sae_all_outputs():
    jobs = [(t, SAE.model, c, layer) for t in SAE.trials for c in SAE.ckpts for layer in SAE_LAYERS]
    paths = [p for job in jobs for part in sae_outputs(*job).values() for p in ([part] if isinstance(part, str) else part)]
    if SAE.synthetic:
        paths += [f"{RESULTS}/sae/{t}/{m}/{c}/L{layer}/recovery.csv" for t, m, c, layer in jobs]
    return paths


# ---- Experiment 2: KD measurement and figures --------------------------------------------------------
from interplab.figures.sae import PER_TRIAL as SAE_FIGURES

KD = config["kd"]
KD_DIR = f"{RESULTS}/kd/{{trial}}/{{model}}/{{ckpt}}/L{{layer}}"


def kd_figures(trial):
    """The figure names chosen for a trial (kd.figures: all, or per trial a list or all)."""
    chosen = KD["figures"] if isinstance(KD["figures"], str) else KD["figures"].get(trial, "all")
    return list(SAE_FIGURES) if chosen == "all" else list(chosen)


def kd_snapshot_files(trial, model, ckpt, layer):
    return [f"{RESULTS}/kd/{trial}/{model}/{ckpt}/L{layer}/{s}.json" for s in SAE.snapshots]


def kd_sparsity_files(trial, model, ckpt, layer):
    """SAELens's sparsity.safetensors of every snapshot, measured on the same held-out tokens."""
    return [f"{RESULTS}/kd/{trial}/{model}/{ckpt}/L{layer}/{s}.sparsity.safetensors" for s in SAE.snapshots]


def kd_trial_records(wildcards):
    return [
        path
        for ckpt in SAE.ckpts
        for layer in SAE_LAYERS
        for path in kd_snapshot_files(wildcards.trial, SAE.model, ckpt, layer)
    ]


def kd_training_logs(trial):
    """Training logs of every layer at the primary checkpoint (the last revision studied)."""
    return [sae_outputs(trial, SAE.model, SAE.ckpts[-1], layer)["log"] for layer in SAE_LAYERS]


# CE loss with the reconstruction spliced in (interplab.sae.evaluate): one job per (model, ckpt, layer)
# serves every snapshot of every trial of that layer from one LM forward per batch. Only with an LM.
KD_SPLICE = LM is not None and KD["splice_tokens"] > 0


def kd_splice_files(trial, model, ckpt, layer):
    return [f"{RESULTS}/kd/{trial}/{model}/{ckpt}/L{layer}/{s}.splice.json" for s in SAE.snapshots]


def kd_trial_splice_records(wildcards):
    """Every splice record of a trial (none without an LM: its table's splice columns are then NaN)."""
    if not KD_SPLICE:
        return []
    return [path for ckpt in SAE.ckpts for layer in SAE_LAYERS
            for path in kd_splice_files(wildcards.trial, SAE.model, ckpt, layer)]


def kd_layer_weights(wildcards):
    """Every trial's snapshot weights at one (model, ckpt, layer), in kd_layer_members' order."""
    return [w for trial in SAE.trials
            for w in sae_outputs(trial, wildcards.model, wildcards.ckpt, wildcards.layer)["weights"]]


def kd_layer_members(wildcards):
    """(trial, snapshot, snapshot directory) of every SAE one measuring or splice job evaluates, in
    output order (trial-major, then snapshot)."""
    return [{"trial": trial, "snapshot": s, "dir": d} for trial in SAE.trials
            for s, d in zip(SAE.snapshots, sae_snapshot_dirs(SimpleNamespace(trial=trial, model=wildcards.model,
                                                                          ckpt=wildcards.ckpt, layer=wildcards.layer)))]


def kd_splice_inputs(wildcards):
    """The token streams and LM checkpoint (as the cache job reads them), the layer's held-out cache
    (its mean is the mean-ablation value) and every trial's snapshot weights at that layer."""
    return {**cache_inputs(wildcards), "cache": sae_cache_input(wildcards), "weights": kd_layer_weights(wildcards)}


def kd_checkpoint_steps():
    """The training step of every studied checkpoint (None where the revision name carries none)."""
    final = LM.teacher.steps if LM is not None and LM.source == "local" else None
    return {ckpt: revision_step(ckpt, final) for ckpt in SAE.ckpts}


def kd_contexts_inputs(wildcards):
    """What the feature browser reads at the primary checkpoint: every layer's held-out cache and final
    SAE, the token streams the cache rows index, and the tokenizer that decodes them."""
    ckpt = SAE.ckpts[-1]
    inputs = {"caches": [cache_dir(SAE.model, ckpt, layer) for layer in SAE.layers],
              "weights": [sae_outputs(wildcards.trial, SAE.model, ckpt, layer)["weights"][-1] for layer in SAE_LAYERS],
              "streams": f"{RESULTS}/tokens/{SAE.model}/streams.safetensors"}
    if LM.source == "local":
        inputs["tokenizer"] = f"{teacher_dir(SAE.model)}/tokenizer"
    return inputs


def kd_ground_truth():
    """The synthetic source's true F and α, to compare the measured ones against (None for a real LM)."""
    if not SAE.synthetic:
        return None
    truth = synthetic_config(config)
    return {"true_f": truth.n_features, "true_alpha": truth.alpha, "true_l0": truth.true_l0}


# ---- Seed 003: dictionaries of several sizes on one layer ---------------------------------------------
from interplab.sae.sizes import size_study

try:
    SIZES = size_study(config)
    if stage_enabled("sizes") and SIZES.layer not in SAE.layers:
        raise ValueError(f"sizes.layer {SIZES.layer} is not a studied layer (model.layers gives {list(SAE.layers)})")
except ValueError as error:
    raise WorkflowError(f"Invalid configuration. {error}") from None
SIZES_LAYER = f"{SIZES.layer:02d}"
SIZES_DIR = f"{RESULTS}/sizes/{{model}}/{{ckpt}}/L{SIZES_LAYER}"
# The sizes train with the sae section's settings (init, lr, batch, normalisation, data order), one
# fixed λ and only a final snapshot; each member overrides the dictionary size.
SIZES_SAE = {**SAE_TRAINING, "trials": SIZES.trials(),
             "training_tokens": SIZES.training_tokens, "snapshots": []}


def sizes_outputs(model, ckpt):
    """Per dictionary (x{expansion}): its final snapshot folder, .pt file and training log."""
    base = SIZES_DIR.format(model=model, ckpt=ckpt)
    names = [SIZES.name(e) for e in SIZES.expansions]
    return {
        "cfg": [f"{base}/{n}/final/cfg.json" for n in names],
        "weights": [f"{base}/{n}/final/sae_weights.safetensors" for n in names],
        "pt": [f"{base}/{n}/sae_layer{SIZES_LAYER}_final.pt" for n in names],
        "log": [f"{base}/{n}/training_log.csv" for n in names],
    }


def sizes_members(wildcards):
    """The training script's members (as sae_group_members gives them), one per dictionary size, each
    with its own init (one seed would nest them: the smaller start = the larger one's first rows)."""
    out = sizes_outputs(wildcards.model, wildcards.ckpt)
    return [{"trial": SIZES.name(e), "layer": SIZES.layer, "log": log, "snapshot_dirs": [str(Path(cfg).parent)],
             "pt": [pt], "work_dir": str(Path(log).parent / ".train"), "sae": {"expansion": e, "dict_size": None},
             "init_key": [SIZES.name(e)]}
            for e, cfg, pt, log in zip(SIZES.expansions, out["cfg"], out["pt"], out["log"])]


# ---- Experiments 3-4: students and probes ------------------------------------------------------------
from interplab.teacher.plan import depth_layer

DISTILL = config["distill"]
DISTILL_DIR = f"{RESULTS}/distill"
DISTILL_FIGURES = ("floor_fit", "probe_accuracy")


def distill_prediction_source():
    """The KD record whose spectrum predicts the floors: trial and snapshot from config, the SAE layer
    at distill.layer_depth (the probes read the same block)."""
    if LM is None:
        raise WorkflowError("Invalid configuration. stage distill needs a language model: model.source local or hf.")
    predict = DISTILL["predict"]
    n_layers = LM.teacher.n_layers if LM.source == "local" else config["model"]["n_layers"]
    layer = depth_layer(n_layers, DISTILL["layer_depth"])
    problems = []
    if predict["trial"] not in SAE.trials:
        problems.append(f"distill.predict.trial {predict['trial']!r} is not in sae.trials ({', '.join(SAE.trials)})")
    if layer not in SAE.layers:
        problems.append(f"the SAE layer at distill.layer_depth {DISTILL['layer_depth']} is block {layer}, which "
                        f"model.layers does not cache ({list(SAE.layers)})")
    if DISTILL["teacher_revision"] not in SAE.ckpts:
        problems.append(f"distill.teacher_revision {DISTILL['teacher_revision']!r} is not in model.revisions "
                        f"({', '.join(SAE.ckpts)})")
    if predict["snapshot"] not in SAE.snapshots:
        problems.append(f"distill.predict.snapshot {predict['snapshot']!r} is not an SAE snapshot "
                        f"({', '.join(SAE.snapshots)})")
    if problems:
        raise WorkflowError("Invalid configuration. " + "; ".join(problems) + ".")
    records = kd_snapshot_files(predict["trial"], SAE.model, DISTILL["teacher_revision"], f"{layer:02d}")
    return records[SAE.snapshots.index(predict["snapshot"])], layer


DISTILL_STUDENTS = [(width, seed) for width in DISTILL["widths"] for seed in DISTILL["seeds"]]


def student_name(width, seed):
    return f"w{width}-s{seed}"


def student_dir(model, width, seed):
    return f"{DISTILL_DIR}/{model}/{student_name(width, seed)}"


def distill_teacher_input(wildcards):
    """The local teacher checkpoint (a hub teacher is loaded by name in the job) and the token streams."""
    inputs = {"streams": f"{RESULTS}/tokens/{wildcards.model}/streams.safetensors"}
    if LM.source == "local":
        inputs["teacher"] = str(local_checkpoint_dir(teacher_dir(wildcards.model), DISTILL["teacher_revision"]))
    return inputs


def distill_student_params(wildcards):
    keys = ("steps", "batch_size", "lr", "betas", "weight_decay", "warmup_steps", "grad_clip", "temperature",
            "eval_every", "eval_rows", "floor_fraction")
    return {"width": int(wildcards.width), "seed": int(wildcards.seed), **{key: DISTILL[key] for key in keys}}


def all_students(model):
    return [student_dir(model, width, seed) for width, seed in DISTILL_STUDENTS]


# ---- Publishing --------------------------------------------------------------------------------------
PUBLISH = config["publish"]

def publish_inputs(wildcards):
    """Every snapshot of every layer of the trial at the primary checkpoint (weights, .pt, held-out
    sparsity), and the trial's KD table."""
    outputs = [sae_outputs(wildcards.trial, SAE.model, SAE.ckpts[-1], layer) for layer in SAE_LAYERS]
    return {
        "weights": [p for o in outputs for p in o["weights"]],
        "pt": [p for o in outputs for p in o["pt"]],
        "sparsity": [p for layer in SAE_LAYERS for p in kd_sparsity_files(wildcards.trial, SAE.model, SAE.ckpts[-1], layer)],
        "metrics": f"{RESULTS}/kd/{wildcards.trial}/metrics.csv",
    }


def publish_card_facts(wildcards):
    """What the card states; base_model and the dataset only when they are hub ids (model/corpus source hf)."""
    sae = config["sae"]
    usage = saelens_usage(config["model"], SAE.ckpts[-1])
    trial = sae["trials"][wildcards.trial]
    adaptive = trial["adaptive"]
    policy = (f"adaptive λ from {trial['l1_coefficient']:g} ({trial['l1_form']} form), target L0 "
              f"{adaptive['target_l0']}, rate {adaptive['rate']:g}") if adaptive else \
             f"fixed λ = {trial['l1_coefficient']:g} ({trial['l1_form']} form)"
    return {
        "trial": wildcards.trial,
        "model_name": usage["model_name"],
        "base_model": usage["model_name"] if config["model"]["source"] == "hf" else None,
        "dataset": usage["dataset_path"],
        "revision": SAE.ckpts[-1],
        "hook": "blocks.{L}.hook_resid_post",
        "layers": list(SAE.layers),
        "l1_policy": policy,
        "training_tokens": sae["training_tokens"],
        "snapshots": list(SAE.snapshots),
    }


def publish_repo_id(wildcards):
    return PUBLISH["repo_ids"].get(wildcards.trial)


# ---- Grokking runs -----------------------------------------------------------------------------------
import functools

from interplab.grok.data import DatasetMissingError, check_root
from interplab.grok.runs import camelyon_runs, modular_runs, spec_to_dict

GROK = config["grok"]
GROK_FIXTURE = f"{RESULTS}/grok/data/fixture"
try:
    GROK_CAMELYON_RUNS = camelyon_runs(GROK, GROK_FIXTURE)
    GROK_MODULAR_RUNS = modular_runs(GROK)
except ValueError as error:
    raise WorkflowError(f"Invalid configuration. {error}") from None
GROK_RUNS = {**GROK_CAMELYON_RUNS, **GROK_MODULAR_RUNS}
GROK_FIGURES = ("accuracy_curves", "regime_curves", "ungrokking_overview", "weight_norms", "modular_control")

def grok_run_spec(wildcards):
    return spec_to_dict(GROK_RUNS[wildcards.run])


def grok_fixture_config(wildcards):
    return {**GROK["fixture"], "shortcut_hospitals": GROK["data"]["train_hospitals"]}


@functools.cache
def real_data_inputs():
    """A real Camelyon17 root's metadata.csv, checked once while the DAG is built: a job that found it
    missing would fail only after Snakemake had deleted the run's previous outputs."""
    try:
        return [str(check_root(GROK["data"]["root_dir"]) / "metadata.csv")]
    except DatasetMissingError as error:
        if workflow.dryrun:  # a dry run may plan a cluster run before the data is downloaded
            logger.warning(f"Dry run only (a real run stops here): grok.data.root_dir: {error}")
            return []
        raise WorkflowError(f"Invalid configuration. grok.data.root_dir: {error}") from None


def grok_data_input(wildcards):
    """The fixture the DAG builds, or the configured Camelyon17 download."""
    return [GROK_FIXTURE] if GROK["data"]["source"] == "fixture" else real_data_inputs()


# ---- Interventions on the grokking runs --------------------------------------------------------------
from interplab.interventions.config import InterventionConfig

INTERVENTIONS = config["interventions"]
INTERVENTION_TABLES = ("probes", "ablation", "steering", "neurons")
INTERVENTION_RUNS = sorted(GROK_CAMELYON_RUNS)
INTERVENTION_FIGURES = ("probe_heatmaps", "ablation", "steering", "neurons", "stats")
def intervention_tables(name):
    return expand(f"{RESULTS}/interventions/{{run}}/{name}.csv", run=INTERVENTION_RUNS)


def intervention_inputs():
    """Every run's four tables (one named input per table kind, runs in INTERVENTION_RUNS order)."""
    return {name: intervention_tables(name) for name in INTERVENTION_TABLES}
