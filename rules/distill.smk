# Experiments 3 and 4 (stage distill; SCIENCE.md §5): students of the teacher's depth at several
# widths trained on its logits alone, their measured floors against the floors the teacher's SAE
# predicts, and linear probes of binary concepts on every model at the same relative depth.
from interplab.distill.probe import depth_layer

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


if stage_enabled("distill"):
    DISTILL_KD_RECORD, DISTILL_LAYER = distill_prediction_source()
    register_targets("distill", [f"{DISTILL_DIR}/{SAE.model}/floors.csv", f"{DISTILL_DIR}/{SAE.model}/probes.csv"])
    register_targets("distill", [f"{RESULTS}/figures/distill/{SAE.model}/{fig}.png" for fig in DISTILL_FIGURES])

    rule distill_student:
        """One student (width, seed) trained on the teacher's logits; resumable, held-out loss logged."""
        input:
            unpack(distill_teacher_input),
        output:
            history=f"{DISTILL_DIR}/{{model}}/w{{width}}-s{{seed}}/history.csv",
            student=directory(f"{DISTILL_DIR}/{{model}}/w{{width}}-s{{seed}}/student"),
        params:
            student=distill_student_params,
            teacher=LM.name,
            revision=DISTILL["teacher_revision"],
            work_dir=f"{DISTILL_DIR}/{{model}}/w{{width}}-s{{seed}}/.train",
            device=config["device"],
        wildcard_constraints:
            model=pinned([SAE.model]),
            width=pinned(DISTILL["widths"]),
            seed=pinned(DISTILL["seeds"]),
        log:
            f"{LOGS}/distill/{{model}}/w{{width}}-s{{seed}}.log",
        benchmark:
            f"{BENCH}/distill/{{model}}/w{{width}}-s{{seed}}.tsv"
        threads: 1
        resources:
            mem_mb=by_attempt(4000),
            runtime=by_attempt(240),
            gpu=1,
        script:
            "../scripts/distill_student.py"

    rule distill_floors:
        """Measured floors per width against the SAE's predicted floors, the affine fit and its checks."""
        input:
            histories=lambda wc: [f"{d}/history.csv" for d in all_students(wc.model)],
            record=DISTILL_KD_RECORD,
        output:
            floors=f"{DISTILL_DIR}/{{model}}/floors.csv",
            curves=f"{DISTILL_DIR}/{{model}}/curves.csv",
        params:
            students=[{"width": width, "seed": seed} for width, seed in DISTILL_STUDENTS],
            floor_fraction=DISTILL["floor_fraction"],
        wildcard_constraints:
            model=pinned([SAE.model]),
        log:
            f"{LOGS}/distill/{{model}}/floors.log",
        benchmark:
            f"{BENCH}/distill/{{model}}/floors.tsv"
        localrule: True
        script:
            "../scripts/distill_floors.py"

    rule distill_probe:
        """Probe accuracy per (model, concept): the teacher and every student, with controls."""
        input:
            unpack(distill_teacher_input),
            students=lambda wc: [f"{d}/student" for d in all_students(wc.model)],
        output:
            f"{DISTILL_DIR}/{{model}}/probes.csv",
        params:
            probe=DISTILL["probe"],
            corpus=as_params(LM.corpus),
            layer=DISTILL_LAYER,
            students=[student_name(width, seed) for width, seed in DISTILL_STUDENTS],
            teacher=LM.name,
            revision=DISTILL["teacher_revision"],
            device=config["device"],
        wildcard_constraints:
            model=pinned([SAE.model]),
        log:
            f"{LOGS}/distill/{{model}}/probes.log",
        benchmark:
            f"{BENCH}/distill/{{model}}/probes.tsv"
        threads: 2
        resources:
            mem_mb=by_attempt(4000),
            runtime=by_attempt(60),
            gpu=1,
        script:
            "../scripts/distill_probe.py"

    rule distill_figure:
        input:
            floors=f"{DISTILL_DIR}/{{model}}/floors.csv",
            curves=f"{DISTILL_DIR}/{{model}}/curves.csv",
            probes=f"{DISTILL_DIR}/{{model}}/probes.csv",
        output:
            report(
                f"{RESULTS}/figures/distill/{{model}}/{{fig}}.png",
                caption="../report/distill/captions.rst",
                category="3. Distilled students and probes",
            ),
            pdf=f"{RESULTS}/figures/distill/{{model}}/{{fig}}.pdf",
        wildcard_constraints:
            model=pinned([SAE.model]),
            fig=pinned(DISTILL_FIGURES),
        log:
            f"{LOGS}/figures/distill/{{model}}/{{fig}}.log",
        benchmark:
            f"{BENCH}/figures/distill/{{model}}/{{fig}}.tsv"
        localrule: True
        script:
            "../scripts/distill_figure.py"
