"""Experiments 3 and 4 of the KD paper: students distilled from the teacher's logits at several
widths, their measured loss floors against the floors the teacher's SAE predicts, and linear
probes of what each student still represents."""
