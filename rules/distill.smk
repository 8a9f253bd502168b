# Experiments 3 and 4 (stage distill; docs/science.md §5): students of the teacher's depth at several
# widths trained on its logits alone, their measured floors against the floors the teacher's SAE
# predicts, and linear probes of binary concepts on every model at the same relative depth.
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
        conda:
            "../envs/lm.yaml"
        script:
            "../scripts/distill_student.py"

    rule distill_floors:
        """Measured floors per width against the SAE's predicted floors, the affine fit and its checks."""
        input:
            histories=lambda wc: [f"{d}/history.csv" for d in all_students(wc.model)],
            record=DISTILL_KD_RECORD,
        output:
            floors=report(
                f"{DISTILL_DIR}/{{model}}/floors.csv",
                caption="../report/distill/floors.rst",
                category=REPORT["distill"],
                subcategory="result tables",
            ),
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
        conda:
            "../envs/lm.yaml"
        script:
            "../scripts/distill_floors.py"

    rule distill_probe:
        """Probe accuracy per (model, concept): the teacher and every student, with controls."""
        input:
            unpack(distill_teacher_input),
            students=lambda wc: [f"{d}/student" for d in all_students(wc.model)],
        output:
            report(
                f"{DISTILL_DIR}/{{model}}/probes.csv",
                caption="../report/distill/probes.rst",
                category=REPORT["distill"],
                subcategory="result tables",
            ),
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
        conda:
            "../envs/lm.yaml"
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
                category=REPORT["distill"],
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
        conda:
            "../envs/lm.yaml"
        script:
            "../scripts/distill_figure.py"
