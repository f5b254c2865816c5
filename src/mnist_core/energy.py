"""Energy and CO2 of a block of work (a training run), from codecarbon's offline tracker.

codecarbon is imported lazily, on the first measurement: importing it is slow
and noisy, and pages that only evaluate should not pay for it. It writes no
file and sends nothing; it tracks only this process, so two runs training at
once do not count each other. Short blocks (fewer than two power samples) and
the fallback used when codecarbon fails are labelled ``estimated``.

codecarbon's first start in a process is slow (importing it and its data
tables, and probing the hardware: 1.3-1.5 s, mostly waiting, 0.07 s of CPU);
later starts take about 0.01-0.04 s. :func:`warm_up` does that first start in
a background thread, so a job that calls it first overlaps it with its data
loading and set-up; a meter that starts meanwhile waits for it.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from dataclasses import dataclass
from types import ModuleType, TracebackType
from typing import Any

from .errors import ConfigError

CO2_COUNTRY_ENV = "MNIST_LAB_CO2_COUNTRY"
DEFAULT_CO2_COUNTRY = "USA"
# Fallback energy model, used only when codecarbon itself fails. These mirror
# codecarbon's own constants: 4 W per busy CPU thread when it cannot read power
# (core/cpu.py DEFAULT_POWER_PER_CORE) and the IEA 2019 world-average intensity.
FALLBACK_WATTS_PER_CPU_SECOND = 4.0
FALLBACK_KG_CO2_PER_KWH = 0.475
JOULES_PER_KWH = 3.6e6


@dataclass(frozen=True)
class EnergyReport:
    """Energy and CO2 of one measured block, and how much to trust them.

    ``estimated`` is True when the block lasted less than two of codecarbon's
    sampling intervals (so it had fewer than two real power samples), or when
    codecarbon failed and the fallback model was used; ``method`` says which.
    """

    energy_kwh: float
    co2_kg: float  # CO2-equivalent
    duration_s: float
    country: str  # ISO 3166-1 alpha-3 code whose grid intensity was used
    estimated: bool
    method: str  # e.g. "codecarbon OfflineEmissionsTracker 3.3.2 (tracking_mode=process, ...)"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of the fields."""
        return dataclasses.asdict(self)


def _resolve_country(country: str | None) -> str:
    """The argument, else $MNIST_LAB_CO2_COUNTRY, else USA; upper-cased ISO alpha-3."""
    source = "country" if country else CO2_COUNTRY_ENV
    value = (country or os.environ.get(CO2_COUNTRY_ENV) or DEFAULT_CO2_COUNTRY).strip().upper()
    if len(value) != 3 or not value.isascii() or not value.isalpha():
        raise ConfigError(source, f"{value!r} is not a 3-letter ISO country code such as USA, FRA or GBR")
    return value


def _import_codecarbon() -> ModuleType:
    """Import codecarbon quietly: its logger would otherwise print INFO lines."""
    import codecarbon

    logging.getLogger("codecarbon").setLevel(logging.ERROR)
    return codecarbon


def _check_country_known(country: str, source: str) -> None:
    """Refuse a code codecarbon has no grid data for (it would silently use another)."""
    from codecarbon.input import DataSource

    known = DataSource().get_global_energy_mix_data()
    if country not in known:
        raise ConfigError(source, f"codecarbon has no grid data for country {country!r}; try USA, FRA or GBR")


def _new_tracker(country: str, measure_power_secs: float) -> Any:
    """An offline tracker that writes no file, sends nothing and tracks only this process."""
    codecarbon = _import_codecarbon()
    return codecarbon.OfflineEmissionsTracker(
        country_iso_code=country,
        measure_power_secs=measure_power_secs,
        tracking_mode="process",
        output_methods=[],
        emissions_endpoint=None,
        allow_multiple_runs=True,
        log_level="error",
        project_name="mnist-lab",
    )


_warm_lock = threading.Lock()
_warming: threading.Thread | None = None


def warm_up() -> threading.Thread:
    """Do codecarbon's slow first start in a background thread, once per process; returns that thread.

    It imports codecarbon and its data tables and starts and stops one
    throwaway tracker, whose hardware probe codecarbon keeps for the process.
    Failures are left to the meter that measures (it falls back and says why).
    """
    global _warming
    with _warm_lock:
        if _warming is None:
            _warming = threading.Thread(target=_first_start, name="codecarbon-warm-up", daemon=True)
            _warming.start()
        return _warming


def _first_start() -> None:
    try:
        from codecarbon.input import DataSource

        DataSource().get_global_energy_mix_data()
        tracker = _new_tracker(DEFAULT_CO2_COUNTRY, 1.0)
        tracker.start()
        tracker.stop()
    except Exception as exc:  # the meter reports codecarbon's failure when it measures
        logging.getLogger(__name__).debug("codecarbon warm-up failed: %s", exc)


def _cpu_power_mode(tracker: Any) -> str:
    """How codecarbon got CPU power ("rapl", "cpu_load" = TDP x load, ...); best effort."""
    for hardware in getattr(tracker, "_hardware", []):
        mode = getattr(hardware, "_mode", None)
        if type(hardware).__name__ == "CPU" and isinstance(mode, str):
            return mode
    return "unknown"


class EnergyMeter:
    """Context manager measuring a block's energy with codecarbon, offline and quietly.

    ``with EnergyMeter() as meter: train(...)`` then read ``meter.report``; it is set
    on exit even when the block raises (the tracker is always stopped). codecarbon
    writes no files, sends nothing, and tracks only this process
    (``tracking_mode="process"``), so two concurrent runs do not count each other.
    If codecarbon fails the report falls back to 4 W per busy CPU-second and a
    world-average grid, with ``estimated=True`` and the reason in ``method``.
    """

    def __init__(self, country: str | None = None, measure_power_secs: float = 1.0) -> None:
        if measure_power_secs <= 0:
            raise ConfigError("measure_power_secs", f"must be positive, got {measure_power_secs}")
        self.country = _resolve_country(country)
        self.measure_power_secs = float(measure_power_secs)
        self.report: EnergyReport | None = None
        self._source = "country" if country else CO2_COUNTRY_ENV
        self._tracker: Any = None
        self._failure: str | None = None
        self._start_wall = 0.0
        self._start_cpu = 0.0

    def __enter__(self) -> EnergyMeter:
        self.report = None
        self._failure = None
        self._tracker = None
        try:
            self._tracker = self._start_tracker()
        except ConfigError:
            raise
        except Exception as exc:  # codecarbon missing or broken: fall back, say why
            self._failure = f"{type(exc).__name__}: {exc}"
        self._start_wall = time.perf_counter()
        self._start_cpu = time.process_time()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        duration = time.perf_counter() - self._start_wall
        cpu_seconds = time.process_time() - self._start_cpu
        if self._tracker is not None:
            try:
                self.report = self._stop_tracker(duration)
            except Exception as error:
                self._failure = f"{type(error).__name__}: {error}"
        if self.report is None:
            self.report = self._fallback_report(duration, cpu_seconds)
        self._tracker = None

    def _start_tracker(self) -> Any:
        """Build and start an offline tracker, after a :func:`warm_up` under way has finished."""
        _import_codecarbon()
        warming = _warming
        if warming is not None and warming is not threading.current_thread():
            warming.join()
        _check_country_known(self.country, self._source)
        tracker = _new_tracker(self.country, self.measure_power_secs)
        tracker.start()
        return tracker

    def _stop_tracker(self, duration: float) -> EnergyReport | None:
        """Stop the tracker and turn its final data into a report (None if it gave none)."""
        co2 = self._tracker.stop()
        data = self._tracker.final_emissions_data
        if co2 is None or data is None:
            self._failure = "codecarbon returned no emissions data"
            return None
        codecarbon = _import_codecarbon()
        return EnergyReport(
            energy_kwh=max(float(data.energy_consumed), 0.0),
            co2_kg=max(float(co2), 0.0),
            duration_s=float(data.duration),
            country=self.country,
            estimated=duration < 2 * self.measure_power_secs,
            method=(
                f"codecarbon OfflineEmissionsTracker {codecarbon.__version__} "
                f"(tracking_mode=process, cpu power={_cpu_power_mode(self._tracker)}, "
                f"sampled every {self.measure_power_secs:g} s)"
            ),
        )

    def _fallback_report(self, duration: float, cpu_seconds: float) -> EnergyReport:
        """codecarbon's own default model, by hand: 4 W per busy CPU-second, world grid."""
        energy_kwh = max(cpu_seconds, 0.0) * FALLBACK_WATTS_PER_CPU_SECOND / JOULES_PER_KWH
        return EnergyReport(
            energy_kwh=energy_kwh,
            co2_kg=energy_kwh * FALLBACK_KG_CO2_PER_KWH,
            duration_s=duration,
            country=self.country,
            estimated=True,
            method=(
                f"fallback estimate, CPU only: {FALLBACK_WATTS_PER_CPU_SECOND:g} W x process CPU "
                f"time, world-average {FALLBACK_KG_CO2_PER_KWH * 1000:g} gCO2/kWh "
                f"(codecarbon failed: {self._failure})"
            ),
        )
