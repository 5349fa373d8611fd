"""Write a face folder (one sub-folder per identity) as an InsightFace RecordIO set, without mxnet.

    python tools/dataset_converters/folder2rec.py data/my_faces data/my_faces_rec [--size 112 112] [--no-header]

Labels follow ``FaceFolderDataset`` (sorted folder names, numerically when all are integers). Writes
``OUT/train.rec``, ``OUT/train.idx`` and ``OUT/property``; read them with
``dict(type='MXFaceDataset', data_root='OUT', pipeline=...)``. See docs/datasets.md ("RecordIO").
"""
import argparse

from lrfr.datasets import FaceFolderDataset
from lrfr.datasets.converters.recordio import write_face_rec
from lrfr.utils import register_all_modules


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Face folder -> train.rec / train.idx / property')
    parser.add_argument('folder', help='one sub-folder of images per identity')
    parser.add_argument('out', help='output folder')
    parser.add_argument('--size', nargs=2, type=int, default=(112, 112), metavar=('H', 'W'),
                        help='image size written to property (default: 112 112)')
    parser.add_argument('--no-header', action='store_true',
                        help='no header/identity records: every record is an image')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    register_all_modules()
    dataset = FaceFolderDataset(data_root=args.folder)
    samples = [(dataset.get_data_info(i)['img_path'], dataset.get_data_info(i)['gt_label'])
               for i in range(len(dataset))]
    rec = write_face_rec(samples, args.out, image_size=tuple(args.size),
                         num_classes=dataset.metainfo['num_classes'], header=not args.no_header)
    print(f'wrote {rec} ({len(samples)} images, {dataset.metainfo["num_classes"]} identities)')


if __name__ == '__main__':
    main()
