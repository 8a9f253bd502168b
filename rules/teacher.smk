# Experiment 2, first half (stage lm): the local GPT-NeoX teacher and the token streams.
if LM is not None:

    rule teacher_streams:
        """The tokenised corpus as fixed-length training and held-out streams, with their hash."""
        input:
            unpack(streams_tokenizer),
        output:
            streams=f"{RESULTS}/tokens/{{model}}/streams.safetensors",
            record=f"{RESULTS}/tokens/{{model}}/streams.json",
        params:
            source=LM.source,
            name=LM.name,
            corpus=as_params(LM.corpus),
            streams=stream_settings(LM, config["cache"]),
        wildcard_constraints:
            model=pinned([LM.label]),
        log:
            f"{LOGS}/tokens/{{model}}.log",
        benchmark:
            f"{BENCH}/tokens/{{model}}.tsv"
        priority: PRIORITY["teacher"]
        threads: 1
        resources:
            mem_mb=by_attempt(4000),
            runtime=by_attempt(120),
        conda:
            "../envs/lm.yaml"
        script:
            "../scripts/teacher_streams.py"


if LM is not None and LM.source == "local":
    register_targets("lm", [f"{teacher_dir(LM.label)}/summary.json",
                            f"{RESULTS}/figures/lm/{LM.label}/teacher_loss.png"])

    rule teacher_tokenizer:
        """Byte-level BPE tokenizer trained on the stdlib corpus, saved in HF format, corpus hash recorded."""
        output:
            tokenizer=directory(f"{RESULTS}/teacher/{{model}}/tokenizer"),
            corpus=f"{RESULTS}/teacher/{{model}}/corpus.json",
        params:
            corpus=as_params(LM.corpus),
            vocab_size=LM.teacher.vocab_size,
        wildcard_constraints:
            model=pinned([LM.label]),
        log:
            f"{LOGS}/teacher/{{model}}/tokenizer.log",
        benchmark:
            f"{BENCH}/teacher/{{model}}/tokenizer.tsv"
        priority: PRIORITY["teacher"]
        threads: 1
        resources:
            mem_mb=by_attempt(2000),
            runtime=by_attempt(15),
        conda:
            "../envs/lm.yaml"
        script:
            "../scripts/teacher_tokenizer.py"

    rule teacher_train:
        """The small GPT-NeoX teacher, with HF checkpoints at steps 0, 1, 2, 4, … and the final step."""
        input:
            tokenizer=f"{RESULTS}/teacher/{{model}}/tokenizer",
            streams=rules.teacher_streams.output.streams,
        output:
            checkpoints=[directory(path) for path in teacher_checkpoint_dirs("{model}")],
            history=f"{RESULTS}/teacher/{{model}}/training.csv",
            summary=f"{RESULTS}/teacher/{{model}}/summary.json",
        params:
            teacher=as_params(LM.teacher),
            checkpoints=list(LM.checkpoints),
            device=config["device"],
        wildcard_constraints:
            model=pinned([LM.label]),
        log:
            f"{LOGS}/teacher/{{model}}/train.log",
        benchmark:
            f"{BENCH}/teacher/{{model}}/train.tsv"
        priority: PRIORITY["teacher"]
        threads: 1  # a 2-thread job waits for both cores to be free at once, which toy and grok jobs delay
        resources:
            mem_mb=by_attempt(4000),
            runtime=by_attempt(60),
            gpu=1,
        conda:
            "../envs/lm.yaml"
        script:
            "../scripts/teacher_train.py"

    rule teacher_figure:
        input:
            history=rules.teacher_train.output.history,
            summary=rules.teacher_train.output.summary,
        output:
            report(
                f"{RESULTS}/figures/lm/{{model}}/teacher_loss.png",
                caption="../report/lm/teacher_loss.rst",
                category=REPORT["lm"],
            ),
            pdf=f"{RESULTS}/figures/lm/{{model}}/teacher_loss.pdf",
        wildcard_constraints:
            model=pinned([LM.label]),
        log:
            f"{LOGS}/figures/lm/{{model}}/teacher_loss.log",
        benchmark:
            f"{BENCH}/figures/lm/{{model}}/teacher_loss.tsv"
        localrule: True
        conda:
            "../envs/lm.yaml"
        script:
            "../scripts/teacher_figure.py"
