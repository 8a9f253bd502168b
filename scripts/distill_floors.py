"""Collect every student's measured floor and compare with the floors the teacher's SAE predicts."""
import logging

import pandas as pd

from interplab.distill.floors import floors_table
from interplab.distill.train import measured_floor
from interplab.io import provenance, read_json, read_table, write_table
from interplab.workflow import job

with job(snakemake) as sm:  # noqa: F821
    curves = pd.concat([read_table(path) for path in sm.input.histories], ignore_index=True)
    measured = pd.DataFrame([{"width": s["width"], "seed": s["seed"],
                              "floor": measured_floor(curves[(curves["width"] == s["width"]) &
                                                             (curves["seed"] == s["seed"])], sm.params.floor_fraction)}
                             for s in sm.params.students])
    table = floors_table(measured, read_json(sm.input.record))
    logging.info("floors:\n%s", table.to_string(index=False))
    prov = provenance({"floor_fraction": sm.params.floor_fraction},
                      inputs={"kd_record": sm.input.record, **{p: p for p in sm.input.histories}})
    write_table(sm.output.floors, table, prov)
    write_table(sm.output.curves, curves, prov)
