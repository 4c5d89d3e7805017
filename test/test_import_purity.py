"""The runtime layers import neither torch nor tensorrt (nor rclpy/cyclonedds where forbidden).

Each check runs in a fresh interpreter, because this test process may already have torch loaded.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

FORBIDDEN = ('torch', 'tensorrt')
FORBIDDEN_TRANSPORTS = ('rclpy', 'cyclonedds')


def run_isolated(code: str) -> dict:
    """Run code in a new interpreter; it prints a JSON dict as its last line."""
    done = subprocess.run([sys.executable, '-c', textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_engines_and_pipeline_run_an_onnxruntime_model_without_torch_or_tensorrt(tmp_path):
    loaded = run_isolated(f'''
        import json, sys
        import numpy as np
        import nitedr_ros.engines, nitedr_ros.pipeline
        from nitedr_ros.engines import open_engine, tiny_models
        from nitedr_ros.pipeline import DerainPipeline, ImageFrame, PipelineConfig, build_pipeline
        derain = tiny_models.identity_model({str(tmp_path / 'cleannet_id.onnx')!r})
        fusion = tiny_models.blend_fusion_model({str(tmp_path / 'fusionnet_blend.onnx')!r})
        engine = open_engine(derain, 'auto')
        engine.infer({{'image': np.zeros((1, 3, 8, 8), np.float32)}})
        from nitedr_ros.engines.options import EngineOptions
        config = PipelineConfig(mode='nitedr', models={{'derain': str(derain), 'fusion': str(fusion)}},
                                engine=EngineOptions('onnxruntime-cpu'))
        pipeline = build_pipeline(config)
        frames = {{'rgb': ImageFrame(np.zeros((8, 8, 3), np.uint8), 'rgb8'),
                   'thermal': ImageFrame(np.zeros((8, 8), np.uint16), '16UC1')}}
        pipeline.process(frames)
        print(json.dumps({{m: m in sys.modules for m in {FORBIDDEN + FORBIDDEN_TRANSPORTS!r}}}))
    ''')
    assert loaded == {m: False for m in FORBIDDEN + FORBIDDEN_TRANSPORTS}


@pytest.mark.parametrize('package,forbidden', [
    ('nitedr_ros.engines', FORBIDDEN),
    ('nitedr_ros.pipeline', FORBIDDEN + FORBIDDEN_TRANSPORTS),
    ('nitedr_ros.core', FORBIDDEN + FORBIDDEN_TRANSPORTS),
    ('nitedr_ros.transports.dds', FORBIDDEN),
    ('nitedr_ros.transports.bag', FORBIDDEN),
])
def test_runtime_packages_import_cleanly(package, forbidden):
    """Importing a runtime package and all its modules leaves the forbidden ones unloaded."""
    loaded = run_isolated(f'''
        import importlib, json, pkgutil, sys
        package = importlib.import_module({package!r})
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + '.'):
            importlib.import_module(info.name)
        print(json.dumps({{m: m in sys.modules for m in {forbidden!r}}}))
    ''')
    assert loaded == {m: False for m in forbidden}
