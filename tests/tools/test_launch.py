"""Beyond one machine: the launch scripts (tools/slurm_*.sh, dist_*.sh), the launcher checks of the tools, and a
2-process gloo run through a fake ``srun`` that covers ``--launcher slurm``, ``--auto-scale-lr``, the sampler
shards of each rank and ``--channels-last`` under DDP.

The fake ``srun`` (and ``scontrol``) stand for SLURM on this machine: ``srun`` records its arguments and starts
``--ntasks`` local copies of the command with the variables a SLURM task gets (``SLURM_PROCID``,
``SLURM_NTASKS``, ``SLURM_LOCALID``, ``SLURM_NODELIST``); ``scontrol show hostnames`` answers ``127.0.0.1``.
"""
import importlib.util
import itertools
import json
import os
import os.path as osp
import socket
import subprocess
import sys
import textwrap

import pytest
import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOLS = osp.join(REPO, 'tools')
CSRI_CONFIG = osp.join(REPO, 'configs', 'demo', 'csri_vdsr-centreface_1xb32_demo-pairs-native.py')

FAKE_SRUN = r'''#!/usr/bin/env bash
# srun for the tests: record the arguments, then run the command as --ntasks local SLURM tasks.
echo "$@" > "$(dirname "$0")/srun_args.txt"
ntasks=1
while [[ "$1" == -* ]]; do
    case "$1" in --ntasks=*) ntasks=${1#--ntasks=} ;; esac
    shift
done
pids=()
for ((i = 0; i < ntasks; i++)); do
    SLURM_PROCID=$i SLURM_LOCALID=$i SLURM_NTASKS=$ntasks SLURM_NODELIST='node[01]' "$@" &
    pids+=($!)
done
rc=0
for pid in "${pids[@]}"; do wait "$pid" || rc=$?; done
exit $rc
'''
FAKE_SCONTROL = '#!/usr/bin/env bash\necho 127.0.0.1\n'

#: Records, in each rank, the optimiser's learning rates and the first indices of both training samplers.
RECORD_HOOK = '''
import itertools, json, os.path as osp
from mmengine.dataset import InfiniteSampler
from mmengine.dist import get_dist_info
from mmengine.hooks import Hook
from lrfr.registry import HOOKS

@HOOKS.register_module()
class RecordShardsHook(Hook):
    def __init__(self, batches):
        self.batches = batches

    def before_train(self, runner):
        rank, world = get_dist_info()
        loader = runner.train_dataloader
        sampler = loader.sampler
        infinite = InfiniteSampler(loader.dataset, shuffle=True, seed=sampler.seed)
        record = dict(
            rank=rank, world=world, seed=sampler.seed, sampler=type(sampler).__name__,
            initial_lr=[g['initial_lr'] for g in runner.optim_wrapper.optimizer.param_groups],
            multi_branch=list(itertools.islice(iter(sampler), self.batches * loader.batch_size)),
            infinite=list(itertools.islice(iter(infinite), self.batches * loader.batch_size)))
        with open(osp.join(runner.work_dir, f'shards_rank{rank}.json'), 'w') as f:
            json.dump(record, f)
'''


def _tool_args():
    spec = importlib.util.spec_from_file_location('_tool_args', osp.join(TOOLS, '_tool_args.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _bash(args, env=None, cwd=REPO):
    return subprocess.run(['bash', *args], cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True,
                          text=True, timeout=60)


@pytest.fixture
def fake_slurm(tmp_path):
    """A folder holding the fake ``srun`` and ``scontrol``; put it first on PATH."""
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    for name, text in (('srun', FAKE_SRUN), ('scontrol', FAKE_SCONTROL)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    return bin_dir


# -- the launcher's variables, checked before mmengine's init_dist ---------------------------------------------
def test_slurm_launch_without_its_variables_is_one_line():
    tool_args = _tool_args()
    with pytest.raises(tool_args.LaunchError, match=r'^--launcher slurm: SLURM_PROCID, SLURM_NTASKS, '
                                                    r'SLURM_NODELIST not set .*slurm_train\.sh'):
        tool_args.check_launch_env('slurm', {'PATH': ''})
    with pytest.raises(tool_args.LaunchError, match=r'SLURM_NTASKS not set'):
        tool_args.check_launch_env('slurm', {'SLURM_PROCID': '0', 'SLURM_NODELIST': 'n1', 'SLURM_LOCALID': '0',
                                             'MASTER_ADDR': 'n1'})


def test_slurm_launch_needs_an_address_and_on_cpu_a_local_id(tmp_path, fake_slurm):
    tool_args = _tool_args()
    base = {'SLURM_PROCID': '0', 'SLURM_NTASKS': '2', 'SLURM_NODELIST': 'node[01]', 'SLURM_LOCALID': '0'}
    with pytest.raises(tool_args.LaunchError, match=r'MASTER_ADDR \(or scontrol on PATH\) not set'):
        tool_args.check_launch_env('slurm', {**base, 'PATH': str(tmp_path)})  # no scontrol there
    tool_args.check_launch_env('slurm', {**base, 'PATH': str(fake_slurm)})
    tool_args.check_launch_env('slurm', {**base, 'PATH': '', 'MASTER_ADDR': '10.0.0.1'})
    if not torch.cuda.is_available():
        no_local = {k: v for k, v in base.items() if k != 'SLURM_LOCALID'}
        with pytest.raises(tool_args.LaunchError, match=r'SLURM_LOCALID \(needed without a GPU\)'):
            tool_args.check_launch_env('slurm', {**no_local, 'PATH': str(fake_slurm)})


def test_pytorch_launch_without_torchrun_is_one_line():
    tool_args = _tool_args()
    with pytest.raises(tool_args.LaunchError, match=r'^--launcher pytorch: RANK, WORLD_SIZE, MASTER_ADDR, '
                                                    r'MASTER_PORT not set .*dist_train\.sh'):
        tool_args.check_launch_env('pytorch', {})
    tool_args.check_launch_env('pytorch', {'RANK': '0', 'WORLD_SIZE': '1', 'MASTER_ADDR': 'a', 'MASTER_PORT': '1'})
    tool_args.check_launch_env('none', {})


def test_train_tool_reports_a_bare_slurm_launch(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith('SLURM_')}
    proc = subprocess.run([sys.executable, osp.join(TOOLS, 'train.py'), CSRI_CONFIG, '--launcher', 'slurm'],
                          cwd=tmp_path, env={**env, 'PYTHONPATH': REPO}, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        'error: --launcher slurm: SLURM_PROCID, SLURM_NTASKS, SLURM_NODELIST not set in the environment; start the '
        'tool with srun: bash tools/slurm_train.sh PARTITION JOB_NAME CONFIG']


# -- the scripts' own checks -----------------------------------------------------------------------------------
@pytest.mark.parametrize('script, args, message', [
    ('slurm_train.sh', ['part', 'job'], 'needs PARTITION JOB_NAME CONFIG, got 2 argument(s)'),
    ('slurm_test.sh', ['part', 'job', 'cfg.py'], 'needs PARTITION JOB_NAME CONFIG CHECKPOINT, got 3 argument(s)'),
    ('dist_train.sh', ['cfg.py'], 'needs CONFIG NUM_PROCS, got 1 argument(s)'),
    ('dist_train.sh', ['cfg.py', 'two'], "NUM_PROCS must be a positive integer, got 'two'"),
    ('dist_test.sh', ['cfg.py', 'x.pth'], 'needs CONFIG CHECKPOINT NUM_PROCS, got 2 argument(s)'),
])
def test_scripts_refuse_missing_arguments_in_one_line(script, args, message):
    proc = _bash([osp.join(TOOLS, script), *args])
    assert proc.returncode == 2
    assert proc.stderr.startswith(f'error: {script}: {message}') and proc.stderr.count('\n') == 1


def test_dist_script_checks_the_node_rank():
    proc = _bash([osp.join(TOOLS, 'dist_train.sh'), 'cfg.py', '2'], env={'NNODES': '2', 'NODE_RANK': '2'})
    assert proc.returncode == 2 and "NODE_RANK must be in 0..NNODES-1 (NNODES=2), got '2'" in proc.stderr


def test_dist_script_passes_the_multi_node_flags_to_torchrun():
    proc = _bash([osp.join(TOOLS, 'dist_train.sh'), 'cfg.py', '4', '--amp'],
                 env={'NNODES': '2', 'NODE_RANK': '1', 'MASTER_ADDR': '10.1.2.3', 'PORT': '29777', 'PYTHON': 'echo'})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [
        '-m', 'torch.distributed.run', '--nnodes=2', '--node_rank=1', '--master_addr=10.1.2.3',
        '--master_port=29777', '--nproc_per_node=4', osp.join(TOOLS, 'train.py'), 'cfg.py', '--launcher',
        'pytorch', '--amp']


def test_slurm_script_without_srun_says_so(tmp_path):
    proc = _bash([osp.join(TOOLS, 'slurm_train.sh'), 'part', 'job', 'cfg.py'], env={'PATH': f'{tmp_path}:/bin'})
    assert proc.returncode == 2 and proc.stderr.startswith('error: slurm_train.sh: srun not found on PATH')


def test_slurm_script_checks_its_counts(fake_slurm):
    proc = _bash([osp.join(TOOLS, 'slurm_train.sh'), 'part', 'job', 'cfg.py'],
                 env={'PATH': f'{fake_slurm}:{os.environ["PATH"]}', 'GPUS': '0'})
    assert proc.returncode == 2 and "GPUS must be an integer >= 1, got '0'" in proc.stderr


# -- 2 processes through srun: slurm launcher, gloo, auto-scaled lr, disjoint shards ---------------------------
def test_slurm_train_two_gloo_processes_scale_the_lr_and_shard_the_samplers(tmp_path, fake_slurm):
    from lrfr.datasets.converters.demo import ensure_demo
    ensure_demo(str(tmp_path / 'data' / 'demo_tinyface'))
    (tmp_path / 'record_hook.py').write_text(RECORD_HOOK)
    batch, batches = 8, 2  # per rank: 4 + 4 per branch; 2 batches stay within one pass of each branch
    config = tmp_path / 'slurm_cfg.py'
    config.write_text(textwrap.dedent(f'''
        _base_ = [{CSRI_CONFIG!r}]
        custom_imports = dict(imports=['record_hook'], allow_failed_imports=False)
        custom_hooks = [dict(type='RecordShardsHook', batches={batches})]
        load_from = None
        train_cfg = dict(max_iters=2)
        train_dataloader = dict(batch_size={batch}, sampler=dict(batch_size={batch}))
        default_hooks = dict(checkpoint=dict(interval=2), logger=dict(interval=1))
    '''))
    env = {'PATH': f'{fake_slurm}:{os.environ["PATH"]}', 'PYTHON': sys.executable, 'PYTHONPATH': REPO,
           'GPUS': '2', 'GPUS_PER_NODE': '2', 'CPUS_PER_TASK': '1', 'GRES': '', 'PORT': str(_free_port()),
           'OMP_NUM_THREADS': '1'}
    proc = _bash([osp.join(TOOLS, 'slurm_train.sh'), 'cpu', 'lrfr-test', str(config), 'work_dirs/slurm',
                  '--auto-scale-lr', '--no-validate', '--channels-last'], env=env, cwd=tmp_path)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    srun_args = (fake_slurm / 'srun_args.txt').read_text().split()
    assert srun_args[:6] == ['--partition=cpu', '--job-name=lrfr-test', '--ntasks=2', '--ntasks-per-node=2',
                             '--cpus-per-task=1', '--kill-on-bad-exit=1']
    assert srun_args[-6:] == ['work_dirs/slurm', '--auto-scale-lr', '--no-validate', '--channels-last',
                              '--launcher', 'slurm']
    assert 'Distributed launcher: slurm' in log and 'Distributed training: True' in log
    # channels-last under DDP: the module is wrapped again, so DDP's buckets match the new strides
    assert 'channels-last model wrapped again in MMDistributedDataParallel' in log
    assert 'Grad strides do not match bucket view strides' not in log
    assert '--auto-scale-lr: world batch 16 / base batch 32: lr 0.005 x 0.5 = 0.0025' in log
    work_dir = tmp_path / 'work_dirs' / 'slurm'
    assert (work_dir / 'final.pth').is_file()
    ranks = [json.loads((work_dir / f'shards_rank{r}.json').read_text()) for r in (0, 1)]
    assert [(r['rank'], r['world'], r['sampler']) for r in ranks] == [(0, 2, 'MultiBranchSampler'),
                                                                      (1, 2, 'MultiBranchSampler')]
    assert ranks[0]['seed'] == ranks[1]['seed']

    # the lr each rank's optimiser starts from: the config's, times world batch / base batch
    from mmengine.config import Config
    from mmengine.optim import build_optim_wrapper
    from lrfr.registry import DATASETS, MODELS
    from lrfr.utils import register_all_modules
    register_all_modules()
    cfg = Config.fromfile(CSRI_CONFIG)
    base_lrs = [g['lr'] for g in build_optim_wrapper(MODELS.build(cfg.model), cfg.optim_wrapper)
                .optimizer.param_groups]
    for record in ranks:
        assert record['initial_lr'] == pytest.approx([lr * 2 * batch / cfg.auto_scale_lr.base_batch_size
                                                      for lr in base_lrs])

    # the shards: disjoint, and together what one process draws in twice the batches
    from mmengine.dataset import InfiniteSampler
    from lrfr.datasets.samplers import MultiBranchSampler
    cfg.train_dataloader.dataset.datasets[0].data_root = str(tmp_path / 'data' / 'demo_tinyface')
    cfg.train_dataloader.dataset.datasets[1].data_root = str(tmp_path / 'data' / 'demo_tinyface')
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    seed = ranks[0]['seed']
    one_process = {
        'multi_branch': MultiBranchSampler(dataset, batch_size=2 * batch, source_ratio=dict(syn=1, nat=1),
                                           seed=seed, rank=0, world_size=1),
        'infinite': InfiniteSampler(dataset, shuffle=True, seed=seed)}
    for key, sampler in one_process.items():
        shard0, shard1 = ranks[0][key], ranks[1][key]
        assert len(shard0) == len(shard1) == batches * batch
        assert not set(shard0) & set(shard1), key
        single = list(itertools.islice(iter(sampler), 2 * batches * batch))
        assert sorted(shard0 + shard1) == sorted(single), key
    # each rank's batches hold the per-rank share of each branch: 4 synthetic, then 4 native
    n_syn = len(dataset.datasets[0])
    for record in ranks:
        for b in range(batches):
            group = record['multi_branch'][b * batch:(b + 1) * batch]
            assert [i < n_syn for i in group] == [True] * (batch // 2) + [False] * (batch // 2)
