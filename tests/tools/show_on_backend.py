"""Run `xfw-harness show`'s programs in a process whose Keras runs on $KERAS_BACKEND, against the runner there.

`python -m tests.tools.show_on_backend REQUEST.json` (from the project's root) reads {"points": [SPEC, ...],
"texts": [[SPEC, PATH], ...], "planted": [[SPEC, OLD, NEW], ...]}: for each point SPEC the programs point_code prints
here; for each text the program text in PATH (what `xfw-harness show --keras-backend B` printed in another process, or
a planted variant of it); for each planted the programs of SPEC with OLD replaced by NEW in the Keras one. Each
is executed as `python FILE` would run it and compared bit for bit with the runner's outputs of the point on this
backend. One JSON line on stdout: {"backend": ..., "results": [{"spec", "source", "torch", "keras", "error"}]},
"torch"/"keras" true where the program's output is the runner's.
"""

from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path

import xfw_harness.core.frameworks  # noqa: F401  (first: fixes the Keras backend before anything imports keras)
from tests.helpers import exec_program, runner_outputs, same
from xfw_harness.cases import find_points
from xfw_harness.core.frameworks import keras
from xfw_harness.tools.show import point_code


def _check(spec: str, source: str, path: str | None = None, replace: tuple[str, str] | None = None
           ) -> dict[str, object]:
    try:
        (point,) = find_points(spec)
        if path is None:
            code = point_code(point, "cpu")
            if replace is not None:
                assert code["keras"].count(replace[0]) == 1, f"{replace[0]!r} is not once in the Keras program"
                code["keras"] = code["keras"].replace(*replace)
            programs = [code["torch"], code["keras"]]
        else:
            programs = [Path(path).read_text(encoding="utf-8")]
        ran_torch, ran_keras = runner_outputs(point)
        namespace: dict[str, object] = {}
        for i, program in enumerate(programs):
            namespace.update(exec_program(program, f"{spec} ({source} {i})"))
        return {"spec": spec, "source": source, "torch": bool(same(namespace["torch_out"], ran_torch)),
                "keras": bool(same(namespace["keras_out"], ran_keras)), "error": None}
    except Exception as e:  # noqa: BLE001 - reported to the test, which names it
        return {"spec": spec, "source": source, "torch": False, "keras": False,
                "error": f"{type(e).__name__}: {str(e)[:400]}\n{traceback.format_exc()[-1500:]}"}


def main(request_path: str) -> None:
    request = json.loads(Path(request_path).read_text(encoding="utf-8"))
    results = [_check(spec, "point_code") for spec in request.get("points", [])]
    results += [_check(spec, path, path) for spec, path in request.get("texts", [])]
    results += [_check(spec, "planted", replace=(old, new)) for spec, old, new in request.get("planted", [])]
    print(json.dumps({"backend": keras.backend.backend(), "results": results}))


if __name__ == "__main__":
    main(sys.argv[1])
