"""FaceDataPreprocessor: stacking, (x - mean) / std for inputs and HR targets, channel order, errors."""
import pytest
import torch
from mmpretrain.structures import DataSample

from lrfr.registry import MODELS


def _data(imgs, hr=None):
    samples = [DataSample() for _ in imgs]
    if hr is not None:
        samples[0].hr_img = hr
    return dict(inputs=imgs, data_samples=samples)


def test_normalises_inputs_and_hr_targets_with_the_same_constants():
    pre = MODELS.build(dict(type='FaceDataPreprocessor'))
    img = torch.tensor([0, 127, 255], dtype=torch.uint8).reshape(3, 1, 1).expand(3, 2, 2).clone()
    hr = torch.full((3, 4, 4), 255, dtype=torch.uint8)
    out = pre(_data([img, img], hr=hr))
    assert out['inputs'].shape == (2, 3, 2, 2) and out['inputs'].dtype == torch.float32
    expected = (torch.tensor([0.0, 127.0, 255.0]) - 127.5) / 128.0
    assert torch.allclose(out['inputs'][0, :, 0, 0], expected)
    assert torch.allclose(out['data_samples'][0].hr_img, torch.full((3, 4, 4), 127.5 / 128.0))
    assert 'hr_img' not in out['data_samples'][1]


def test_to_rgb_and_channels_last_and_per_channel_constants():
    pre = MODELS.build(dict(type='FaceDataPreprocessor', mean=[1.0, 2.0, 3.0], std=[1.0, 1.0, 2.0], to_rgb=True,
                            channels_last=True))
    img = torch.tensor([10, 20, 30], dtype=torch.uint8).reshape(3, 1, 1)
    out = pre(_data([img]))['inputs']
    # BGR (10, 20, 30) -> RGB (30, 20, 10), then per-channel (x - mean) / std
    assert torch.allclose(out[0, :, 0, 0], torch.tensor([29.0, 18.0, 3.5]))
    assert out.is_contiguous(memory_format=torch.channels_last)


def test_bad_input_raises_clearly():
    pre = MODELS.build(dict(type='FaceDataPreprocessor'))
    with pytest.raises(ValueError, match='share a shape'):
        pre(_data([torch.zeros(3, 4, 4, dtype=torch.uint8), torch.zeros(3, 5, 4, dtype=torch.uint8)]))
    with pytest.raises(ValueError, match='std must be positive'):
        MODELS.build(dict(type='FaceDataPreprocessor', std=0))


@pytest.mark.parametrize('non_blocking', [True, False])
def test_host_to_device_copies_pass_non_blocking(monkeypatch, non_blocking):
    # Every tensor cast_data moves (inputs and the samples' hr_img / gt_label) must get the flag: without it a
    # copy from pinned memory stalls the host until the GPU has the batch (issue 12).
    calls = []
    original = torch.Tensor.to

    def recording_to(self, *args, **kwargs):
        calls.append((tuple(self.shape), kwargs.get('non_blocking')))
        return original(self, *args, **kwargs)

    pre = MODELS.build(dict(type='FaceDataPreprocessor', non_blocking=non_blocking))
    imgs = [torch.zeros(3, 2, 2, dtype=torch.uint8), torch.zeros(3, 2, 2, dtype=torch.uint8)]
    data = _data(imgs, hr=torch.zeros(3, 4, 4, dtype=torch.uint8))
    data['data_samples'][1].set_gt_label(1)
    monkeypatch.setattr(torch.Tensor, 'to', recording_to)
    pre(data)
    moved = [shape for shape, _ in calls]
    assert moved.count((3, 2, 2)) == 2 and (3, 4, 4) in moved and (1,) in moved, calls
    assert {flag for _, flag in calls} == {non_blocking}, calls
