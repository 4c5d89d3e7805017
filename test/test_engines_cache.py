"""TensorRT engine cache without a GPU: key, lock, rebuild decisions (fake toolkit)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from nitedr_ros.engines.cuda import DeviceIdentity
from nitedr_ros.engines.engine_cache import (
    BuildOutput,
    BuildSettings,
    EngineBuildError,
    EngineCache,
    EngineFileError,
    file_lock,
    read_sidecar,
    stale_reason,
)
from nitedr_ros.engines.tensorrt_toolkit import profile_shapes
from nitedr_ros.errors import BackendUnavailableError, ConfigError

DEVICE = DeviceIdentity('Fake GPU', (8, 7))


class FakeEngine:
    def __init__(self, plan: bytes) -> None:
        self.plan = plan


class FakeToolkit:
    """Builds 'PLAN:<onnx bytes>' plans; deserializes only plans with that prefix."""

    def __init__(self, version: str = '10.16.1', build_seconds: float = 0.0) -> None:
        self.version = version
        self.build_seconds = build_seconds
        self.builds: list[tuple[Path, BuildSettings, bytes | None]] = []
        self.deserialized = 0

    def build(self, onnx_path: Path, settings: BuildSettings, timing_cache: bytes | None) -> BuildOutput:
        time.sleep(self.build_seconds)
        self.builds.append((onnx_path, settings, timing_cache))
        plan = b'PLAN:' + settings.precision.encode() + b':' + onnx_path.read_bytes()
        return BuildOutput(plan, b'TIMING%d' % len(self.builds))

    def deserialize(self, plan: bytes):
        self.deserialized += 1
        return FakeEngine(plan) if plan.startswith(b'PLAN:') else None


@pytest.fixture()
def onnx_file(tmp_path: Path) -> Path:
    path = tmp_path / 'models' / 'cleannet_realtime.onnx'
    path.parent.mkdir()
    path.write_bytes(b'fake onnx graph v1')
    return path


def make_cache(tmp_path: Path, toolkit: FakeToolkit | None = None, device: DeviceIdentity = DEVICE
               ) -> EngineCache:
    return EngineCache(tmp_path / 'engines', toolkit or FakeToolkit(), device, poll_s=0.01)


def test_key_holds_everything_an_engine_depends_on(tmp_path, onnx_file):
    cache = make_cache(tmp_path)
    key = cache.key_for(onnx_file, BuildSettings())
    data = key.to_dict()
    assert data['onnx_name'] == 'cleannet_realtime.onnx'
    assert len(data['onnx_sha256']) == 64
    assert data['tensorrt_version'] == '10.16.1'
    assert data['gpu_name'] == 'Fake GPU' and data['compute_capability'] == '8.7'
    assert data['precision'] == 'fp16'
    assert data['profile_min_hw'] == [128, 128] and data['profile_max_hw'] == [1088, 1920]
    name = key.filename
    assert name.startswith(f'cleannet_realtime.{key.onnx_sha256[:12]}.trt10.16.1.sm87.fp16.')
    assert name.endswith('.engine')


@pytest.mark.parametrize('change', ['onnx', 'tensorrt', 'gpu', 'capability', 'precision', 'profile',
                                    'workspace', 'optimization_level'])
def test_key_changes_with_each_input(tmp_path, onnx_file, change):
    settings = BuildSettings()
    base = make_cache(tmp_path).key_for(onnx_file, settings)
    toolkit, device = FakeToolkit(), DEVICE
    if change == 'onnx':
        onnx_file.write_bytes(b'fake onnx graph v2')
    elif change == 'tensorrt':
        toolkit = FakeToolkit('11.4.0')
    elif change == 'gpu':
        device = DeviceIdentity('Other GPU', (8, 7))
    elif change == 'capability':
        device = DeviceIdentity('Fake GPU', (8, 9))
    elif change == 'precision':
        settings = BuildSettings(precision='fp32')
    elif change == 'profile':
        settings = BuildSettings(profile_max_hw=(720, 1280))
    elif change == 'workspace':
        settings = BuildSettings(workspace_mb=2048)
    elif change == 'optimization_level':
        settings = BuildSettings(optimization_level=5)
    other = make_cache(tmp_path, toolkit, device).key_for(onnx_file, settings)
    assert other != base
    assert other.digest != base.digest
    assert other.filename != base.filename


def test_build_then_load_from_cache(tmp_path, onnx_file):
    toolkit = FakeToolkit()
    cache = make_cache(tmp_path, toolkit)
    first = cache.get(onnx_file, BuildSettings())
    assert first.source == 'built' and first.reason == 'no cached engine'
    assert first.path.is_file() and first.engine.plan == first.path.read_bytes()
    sidecar = read_sidecar(cache.sidecar_path(first.path))
    assert sidecar['key'] == first.key.to_dict()
    assert sidecar['engine_bytes'] == first.path.stat().st_size
    assert cache.timing_cache_path().read_bytes() == b'TIMING1'
    second = make_cache(tmp_path, toolkit).get(onnx_file, BuildSettings())
    assert second.source == 'cache'
    assert len(toolkit.builds) == 1


def test_timing_cache_is_passed_to_the_next_build(tmp_path, onnx_file):
    toolkit = FakeToolkit()
    cache = make_cache(tmp_path, toolkit)
    cache.get(onnx_file, BuildSettings())
    cache.get(onnx_file, BuildSettings(precision='fp32'))
    assert toolkit.builds[0][2] is None
    assert toolkit.builds[1][2] == b'TIMING1'


def test_rebuild_when_the_onnx_changes(tmp_path, onnx_file):
    toolkit = FakeToolkit()
    cache = make_cache(tmp_path, toolkit)
    old = cache.get(onnx_file, BuildSettings())
    onnx_file.write_bytes(b'fake onnx graph v2')
    new = cache.get(onnx_file, BuildSettings())
    assert new.source == 'built' and new.path != old.path
    assert len(toolkit.builds) == 2


def test_rebuild_when_the_sidecar_key_differs(tmp_path, onnx_file):
    toolkit = FakeToolkit()
    cache = make_cache(tmp_path, toolkit)
    built = cache.get(onnx_file, BuildSettings())
    sidecar_path = cache.sidecar_path(built.path)
    sidecar = json.loads(sidecar_path.read_text())
    sidecar['key']['tensorrt_version'] = '10.0.0'
    sidecar_path.write_text(json.dumps(sidecar))
    again = cache.get(onnx_file, BuildSettings())
    assert again.source == 'built'
    assert 'cache key differs (tensorrt_version)' in again.reason


@pytest.mark.parametrize('damage', ['garbage', 'truncated', 'rejected', 'no-sidecar'])
def test_rebuild_when_the_engine_file_is_bad(tmp_path, onnx_file, damage):
    toolkit = FakeToolkit()
    cache = make_cache(tmp_path, toolkit)
    built = cache.get(onnx_file, BuildSettings())
    plan = built.path.read_bytes()
    if damage == 'garbage':
        built.path.write_bytes(b'X' * len(plan))
    elif damage == 'truncated':
        built.path.write_bytes(plan[:5])
    elif damage == 'rejected':  # the sidecar matches but the runtime refuses the old plan twice
        refusals = iter([None, None])
        real = toolkit.deserialize
        toolkit.deserialize = lambda plan: next(refusals, real(plan))
    else:
        cache.sidecar_path(built.path).unlink()
    again = cache.get(onnx_file, BuildSettings())
    assert again.source == 'built'
    assert len(toolkit.builds) == 2
    expected = {'garbage': 'corrupt', 'truncated': 'size differs', 'rejected': 'deserialization returned no',
                'no-sidecar': 'sidecar missing'}[damage]
    assert expected in again.reason
    assert again.engine.plan == plan


def test_a_plan_that_cannot_be_loaded_after_building_is_an_error(tmp_path, onnx_file):
    toolkit = FakeToolkit()
    toolkit.deserialize = lambda plan: None
    with pytest.raises(BackendUnavailableError, match='could not deserialize'):
        make_cache(tmp_path, toolkit).get(onnx_file, BuildSettings())


def test_deserializer_exception_means_rebuild(tmp_path, onnx_file):
    toolkit = FakeToolkit()
    cache = make_cache(tmp_path, toolkit)
    cache.get(onnx_file, BuildSettings())
    calls = {'n': 0}
    real = toolkit.deserialize

    def flaky(plan):
        calls['n'] += 1
        if calls['n'] <= 2:  # the load outside and inside the lock both fail
            raise RuntimeError('engine built with another TensorRT')
        return real(plan)

    toolkit.deserialize = flaky
    again = cache.get(onnx_file, BuildSettings())
    assert again.source == 'built'
    assert 'deserialization failed (RuntimeError' in again.reason


def test_force_rebuild(tmp_path, onnx_file):
    toolkit = FakeToolkit()
    cache = make_cache(tmp_path, toolkit)
    first = cache.get(onnx_file, BuildSettings())
    forced = cache.get(onnx_file, BuildSettings(), force_rebuild=True)
    assert forced.source == 'built' and forced.reason == 'forced rebuild'
    assert forced.path == first.path
    assert len(toolkit.builds) == 2
    assert read_sidecar(cache.sidecar_path(forced.path))['build_id'] != first.sidecar['build_id']


def test_build_failure_leaves_no_files(tmp_path, onnx_file):
    class Failing(FakeToolkit):
        def build(self, onnx_path, settings, timing_cache):
            raise BackendUnavailableError('TensorRT cannot parse the model: unsupported op')

    cache = make_cache(tmp_path, Failing())
    with pytest.raises(BackendUnavailableError, match='unsupported op'):
        cache.get(onnx_file, BuildSettings())
    leftovers = [p.name for p in (tmp_path / 'engines').iterdir() if not p.name.endswith('.lock')]
    assert leftovers == []


def test_missing_onnx_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match='ONNX model not found'):
        make_cache(tmp_path).get(tmp_path / 'nope.onnx', BuildSettings())


def test_stale_reason_decisions(tmp_path, onnx_file):
    cache = make_cache(tmp_path)
    key = cache.key_for(onnx_file, BuildSettings())
    path = tmp_path / 'x.engine'
    assert stale_reason(path, None, key) == 'no cached engine'
    path.write_bytes(b'PLAN:')
    assert stale_reason(path, None, key) == 'sidecar missing or unreadable'
    assert stale_reason(path, {'key': key.to_dict(), 'engine_bytes': 5}, key) is None
    assert 'size differs' in stale_reason(path, {'key': key.to_dict(), 'engine_bytes': 6}, key)
    other = dict(key.to_dict(), precision='fp32')
    assert stale_reason(path, {'key': other}, key) == 'cache key differs (precision)'


def test_lock_excludes_and_times_out(tmp_path):
    lock = tmp_path / 'a.lock'
    with file_lock(lock), pytest.raises(BackendUnavailableError, match='timed out'), \
            file_lock(lock, timeout_s=0.05, poll_s=0.01):
        pass
    with file_lock(lock, timeout_s=0.05):  # released again
        pass


def test_two_threads_build_once_and_both_get_the_engine(tmp_path, onnx_file):
    toolkit = FakeToolkit(build_seconds=0.3)
    results = {}

    def worker(name: str) -> None:
        results[name] = make_cache(tmp_path, toolkit).get(onnx_file, BuildSettings())

    threads = [threading.Thread(target=worker, args=(n,)) for n in ('a', 'b')]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(toolkit.builds) == 1
    assert sorted(r.source for r in results.values()) == ['built', 'cache']
    assert results['a'].engine.plan == results['b'].engine.plan


_PROCESS_SCRIPT = textwrap.dedent('''
    import sys, time
    from pathlib import Path
    from nitedr_ros.engines.cuda import DeviceIdentity
    from nitedr_ros.engines.engine_cache import BuildOutput, BuildSettings, EngineCache

    class Toolkit:
        version = '10.16.1'
        def build(self, onnx_path, settings, timing_cache):
            with open(sys.argv[3], 'a') as log:
                log.write('build\\n')
            time.sleep(0.8)
            return BuildOutput(b'PLAN:' + onnx_path.read_bytes())
        def deserialize(self, plan):
            return plan if plan.startswith(b'PLAN:') else None

    cache = EngineCache(sys.argv[1], Toolkit(), DeviceIdentity('Fake GPU', (8, 7)), poll_s=0.02)
    result = cache.get(Path(sys.argv[2]), BuildSettings())
    print(result.source, result.path.name)
''')


def test_two_processes_build_once(tmp_path, onnx_file):
    log = tmp_path / 'builds.log'
    cmd = [sys.executable, '-c', _PROCESS_SCRIPT, str(tmp_path / 'engines'), str(onnx_file), str(log)]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outputs = [p.communicate(timeout=60) for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    sources = sorted(out.split()[0] for out, _ in outputs)
    assert sources == ['built', 'cache']
    assert len({out.split()[1] for out, _ in outputs}) == 1
    assert log.read_text().count('build') == 1


def test_profile_shapes_fill_dynamic_axes_only():
    settings = BuildSettings(profile_min_hw=(64, 96), profile_opt_hw=(360, 640), profile_max_hw=(720, 1280))
    assert profile_shapes((-1, 3, -1, -1), settings) == ((1, 3, 64, 96), (1, 3, 360, 640), (1, 3, 720, 1280))
    assert profile_shapes((1, 1, 256, 256), settings) == ((1, 1, 256, 256),) * 3
    # uint8 NHWC inputs (the .u8.onnx variants): H and W are axes 1 and 2
    assert profile_shapes((1, -1, -1, 3), settings) == ((1, 64, 96, 3), (1, 360, 640, 3), (1, 720, 1280, 3))
    with pytest.raises(EngineBuildError, match='channel dimension must be static'):
        profile_shapes((1, -1, -1, -1), settings)


@pytest.mark.parametrize('kwargs', [dict(precision='int8'), dict(profile_min_hw=(0, 64)),
                                    dict(profile_min_hw=(800, 800), profile_opt_hw=(720, 1280)),
                                    dict(workspace_mb=0)])
def test_bad_build_settings(kwargs):
    with pytest.raises(ConfigError):
        BuildSettings(**kwargs)


def cache_files(cache: EngineCache) -> set[str]:
    return {p.name for p in cache.directory.iterdir() if not p.name.startswith('timing.')}


def test_a_build_prunes_older_engines_of_the_same_model_and_gpu(tmp_path, onnx_file):
    toolkit = FakeToolkit()
    cache = make_cache(tmp_path, toolkit)
    old = cache.get(onnx_file, BuildSettings(profile_max_hw=(720, 1280)))
    other_model = onnx_file.with_name('cleannet_realtime.fp16.onnx')  # another stem: never pruned
    other_model.write_bytes(b'fp16 graph')
    kept_model = cache.get(other_model, BuildSettings())
    ada = DeviceIdentity('Fake GPU', (8, 9))
    other_gpu = make_cache(tmp_path, toolkit, ada).get(onnx_file, BuildSettings())
    assert old.path.is_file() and cache.lock_path(old.path).exists()
    new = cache.get(onnx_file, BuildSettings())
    assert new.source == 'built'
    assert 'differs in profile_max_hw' in new.reason  # says why the old engine did not serve
    assert not old.path.exists() and not cache.sidecar_path(old.path).exists()
    assert not cache.lock_path(old.path).exists()
    assert kept_model.path.is_file() and other_gpu.path.is_file() and new.path.is_file()


def test_pruning_skips_an_engine_being_built_and_can_be_off(tmp_path, onnx_file):
    toolkit = FakeToolkit()
    old = make_cache(tmp_path, toolkit).get(onnx_file, BuildSettings(workspace_mb=512))
    kept = EngineCache(tmp_path / 'engines', toolkit, DEVICE, prune=False).get(onnx_file, BuildSettings())
    assert old.path.is_file() and kept.path.is_file()
    with file_lock(EngineCache.lock_path(old.path)):
        make_cache(tmp_path, toolkit).get(onnx_file, BuildSettings(workspace_mb=2048))
    assert old.path.is_file()  # its lock was held
    assert not kept.path.exists()  # not locked: pruned


def test_sidecar_keeps_the_onnx_metadata(tmp_path):
    from nitedr_ros.engines import tiny_models

    onnx_path = tiny_models.identity_model(tmp_path / 'stereoirr_tiny.onnx', 'stereoirr')
    built = make_cache(tmp_path).get(onnx_path, BuildSettings())
    assert built.sidecar['onnx_metadata']['nitedr.network'] == 'stereoirr'
    assert read_sidecar(EngineCache.sidecar_path(built.path))['onnx_metadata']['nitedr.multiple_of'] == '8'


def test_explicit_engine_file_is_built_loaded_and_rebuilt_in_place(tmp_path, onnx_file):
    toolkit = FakeToolkit()
    cache = make_cache(tmp_path, toolkit)
    plan = tmp_path / 'plans' / 'derain.engine'
    first = cache.get(onnx_file, BuildSettings(), engine_path=plan)
    assert first.source == 'built' and first.path == plan and plan.is_file()
    assert read_sidecar(EngineCache.sidecar_path(plan))['key'] == first.key.to_dict()
    assert cache.get(onnx_file, BuildSettings(), engine_path=plan).source == 'cache'
    changed = cache.get(onnx_file, BuildSettings(optimization_level=5), engine_path=plan)
    assert changed.source == 'built' and changed.path == plan
    assert 'cache key differs (optimization_level)' in changed.reason
    forced = cache.get(onnx_file, BuildSettings(), engine_path=plan, force_rebuild=True)
    assert forced.reason == 'forced rebuild'
    assert not cache.directory.exists() or not list(cache.directory.glob('*.engine'))  # nothing in the cache


def test_explicit_engine_file_without_sidecar_is_loaded_as_given_and_never_overwritten(tmp_path, onnx_file):
    toolkit = FakeToolkit()
    cache = make_cache(tmp_path, toolkit)
    plan = tmp_path / 'trtexec.engine'
    plan.write_bytes(b'PLAN:from trtexec')
    loaded = cache.get(onnx_file, BuildSettings(), engine_path=plan)
    assert loaded.source == 'file' and 'without sidecar' in loaded.reason
    assert loaded.engine.plan == b'PLAN:from trtexec' and toolkit.builds == []
    plan.write_bytes(b'not a plan')
    with pytest.raises(EngineFileError, match='cannot use engine file'):
        cache.get(onnx_file, BuildSettings(), engine_path=plan)
    assert plan.read_bytes() == b'not a plan' and toolkit.builds == []


def test_explicit_engine_file_without_its_onnx(tmp_path, onnx_file):
    toolkit = FakeToolkit()
    cache = make_cache(tmp_path, toolkit)
    plan = tmp_path / 'derain.engine'
    cache.get(onnx_file, BuildSettings(), engine_path=plan)
    loaded = cache.load_file(plan, BuildSettings())
    assert loaded.source == 'file' and 'sidecar matches' in loaded.reason
    assert loaded.key.onnx_sha256 == read_sidecar(EngineCache.sidecar_path(plan))['key']['onnx_sha256']
    with pytest.raises(EngineFileError, match=r'profile_max_hw \[1088, 1920\] != \[720, 1280\]'):
        cache.load_file(plan, BuildSettings(profile_max_hw=(720, 1280)))
    newer = make_cache(tmp_path, FakeToolkit('11.0.0'))
    with pytest.raises(EngineFileError, match='tensorrt_version'):
        newer.load_file(plan, BuildSettings())
    with pytest.raises(EngineFileError, match='engine file not found'):
        cache.load_file(tmp_path / 'absent.engine', BuildSettings())
    assert len(toolkit.builds) == 1


def test_an_unusable_runtime_is_an_error_not_a_rebuild(tmp_path, onnx_file):

    toolkit = FakeToolkit()
    cache = make_cache(tmp_path, toolkit)
    cache.get(onnx_file, BuildSettings())

    def no_runtime(plan):
        raise EngineBuildError('TensorRT failed creating the TensorRT runtime: TypeError: nullptr')

    toolkit.deserialize = no_runtime
    with pytest.raises(EngineBuildError, match='nullptr'):
        cache.get(onnx_file, BuildSettings())
    assert len(toolkit.builds) == 1
