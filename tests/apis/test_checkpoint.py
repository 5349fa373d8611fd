"""lrfr.apis.checkpoint: strict loading names what does not fit; a finished run publishes ``final.pth``."""
import pytest
import torch
from torch import nn

from lrfr.apis import FINAL_CHECKPOINT, last_checkpoint, load_checkpoint_strict, publish_final_checkpoint


class _Net(nn.Module):
    def __init__(self, width: int = 3) -> None:
        super().__init__()
        self.fc = nn.Linear(2, width)


def _save(tmp_path, state, name='ckpt.pth'):
    path = tmp_path / name
    torch.save(state, path)
    return str(path)


def test_strict_load_copies_every_weight_and_returns_the_meta(tmp_path):
    source = _Net()
    path = _save(tmp_path, {'state_dict': {f'module.{k}': v for k, v in source.state_dict().items()},
                            'meta': {'epoch': 3}})
    target = _Net()
    checkpoint = load_checkpoint_strict(target, path)
    assert checkpoint['meta'] == {'epoch': 3}
    assert torch.equal(target.fc.weight, source.fc.weight) and torch.equal(target.fc.bias, source.fc.bias)


@pytest.mark.parametrize('state,message', [
    ({'fc.weight': torch.zeros(3, 2)}, r"1 model keys missing from the file \(e.g. \['fc.bias'\]\)"),
    ({'fc.weight': torch.zeros(3, 2), 'fc.bias': torch.zeros(3), 'extra': torch.zeros(1)},
     r"1 file keys the model does not have \(e.g. \['extra'\]\)"),
    ({'fc.weight': torch.zeros(4, 2), 'fc.bias': torch.zeros(4)},
     r'2 shape mismatches \(e.g. fc.bias: file \(4,\) vs model \(3,\)\)'),
])
def test_strict_load_names_the_file_the_config_and_the_mismatch(tmp_path, state, message):
    path = _save(tmp_path, {'state_dict': state})
    model = _Net()
    before = model.fc.weight.clone()
    with pytest.raises(RuntimeError, match=f'checkpoint {path} does not match the model for config my_cfg.py: '
                                           f'.*{message}'):
        load_checkpoint_strict(model, path, config_name='my_cfg.py')
    assert torch.equal(model.fc.weight, before)  # nothing half-loaded


def test_strict_load_refuses_a_file_that_is_not_a_checkpoint(tmp_path):
    path = _save(tmp_path, [1, 2, 3], 'list.pth')
    with pytest.raises(RuntimeError, match=r'list.pth is not a checkpoint: expected a dict, got list'):
        load_checkpoint_strict(_Net(), path)


def test_publish_final_checkpoint(tmp_path):
    assert publish_final_checkpoint(str(tmp_path)) is None  # nothing trained yet
    ckpt = tmp_path / 'iter_10.pth'
    ckpt.write_bytes(b'weights')
    (tmp_path / 'last_checkpoint').write_text(str(ckpt))
    assert last_checkpoint(str(tmp_path)) == str(ckpt)
    final = publish_final_checkpoint(str(tmp_path))
    assert final == str(tmp_path / FINAL_CHECKPOINT)
    ckpt.unlink()  # mmengine's max_keep_ckpts may delete it: the published file stays
    assert (tmp_path / FINAL_CHECKPOINT).read_bytes() == b'weights'
    assert last_checkpoint(str(tmp_path)) is None  # the record now points at a deleted file
    (tmp_path / 'iter_20.pth').write_bytes(b'newer')
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_20.pth'))
    assert publish_final_checkpoint(str(tmp_path)) == final  # republishing replaces the old link
    assert (tmp_path / FINAL_CHECKPOINT).read_bytes() == b'newer'
