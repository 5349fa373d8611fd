"""``lrfr-identify`` (also ``python tools/identify.py``): enrol a gallery into a saved index, then search it.

    lrfr-identify enrol CONFIG CKPT --gallery DIR_OR_LIST --index faces.gallery [--skip-bad]
    lrfr-identify search --index faces.gallery --query IMG_OR_DIR [--top-k 5] [--json]

``--gallery`` is a face-folder tree (one sub-folder per identity, as :class:`~lrfr.datasets.FaceFolderDataset`
reads it) or a ``<path> <label>`` list file (as :class:`~lrfr.datasets.FaceListDataset`, paths relative to the
list's folder). Everything goes through :class:`lrfr.apis.FaceGallery`, the Python API's code path; this module
only parses arguments and prints. Bad input (an unreadable image, an index of another model or format version,
a query that is not an image, IVF without faiss) ends the command with one line naming the culprit.
"""
import argparse
import contextlib
import json
import os
import os.path as osp
import sys
from typing import List, Optional, Sequence, Tuple

from lrfr.datasets.base_face import is_image_file
from lrfr.datasets.transforms.loading import FaceImageError

PROG = 'lrfr-identify'


def gallery_files(source: str) -> Tuple[List[str], List[str]]:
    """Image paths and identity names of a face-folder tree or a ``<path> <label>`` list file."""
    from lrfr.datasets import FaceFolderDataset, FaceListDataset
    if osp.isdir(source):
        dataset = FaceFolderDataset(data_root=source, subset='gallery', pipeline=[])
    elif osp.isfile(source):
        dataset = FaceListDataset(ann_file=osp.abspath(source), data_root=osp.dirname(osp.abspath(source)),
                                  subset='gallery', pipeline=[])
    else:
        raise FileNotFoundError(f'--gallery {source}: no such folder or list file')
    classes = dataset.metainfo.get('classes')
    infos = [dataset.get_data_info(i) for i in range(len(dataset))]
    files = [info['img_path'] for info in infos]
    if osp.isdir(source):
        labels = [str(classes[int(info['gt_label'])]) for info in infos]
    else:
        labels = [str(int(info['gt_label'])) for info in infos]
    return files, labels


def query_files(query: str) -> List[str]:
    """The image files of a folder (sorted, not recursive), or the one query file."""
    if osp.isdir(query):
        files = sorted(osp.join(query, n) for n in os.listdir(query) if is_image_file(n))
        if not files:
            raise FileNotFoundError(f'--query {query}: the folder holds no image files')
        return files
    if not osp.isfile(query):
        raise FileNotFoundError(f'--query {query}: no such image or folder')
    return [query]


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=PROG, description='Enrol faces into a saved gallery index and '
                                     'identify query faces against it')
    sub = parser.add_subparsers(dest='command', required=True)
    enrol = sub.add_parser('enrol', help='embed a gallery and save it as an index file')
    enrol.add_argument('config', help='model config')
    enrol.add_argument('checkpoint', help='trained checkpoint')
    enrol.add_argument('--gallery', required=True, help='face-folder tree (one folder per identity) or a '
                       '"<path> <label>" list file')
    enrol.add_argument('--index', required=True, help='gallery file to write')
    enrol.add_argument('--distance', choices=('euclidean', 'cosine'),
                       help="default: the config's IdentificationMetric's (euclidean for TinyFace)")
    enrol.add_argument('--backend', choices=('auto', 'faiss', 'torch'), default='auto',
                       help='search backend (auto: faiss when installed)')
    enrol.add_argument('--kind', choices=('flat', 'ivf', 'hnsw'), default='flat',
                       help='index kind: flat is exact; ivf and hnsw are approximate (faiss)')
    enrol.add_argument('--nlist', type=int, default=1024, help='IVF cells')
    enrol.add_argument('--nprobe', type=int, default=16, help='IVF cells visited per query')
    enrol.add_argument('--batch-size', type=int, default=64, help='images per forward pass')
    enrol.add_argument('--skip-bad', action='store_true',
                       help='skip unreadable images with a counted warning (default: stop, naming the file)')
    enrol.add_argument('--no-progress', action='store_true', help='no progress bar')
    search = sub.add_parser('search', help='identify query faces against a saved gallery')
    search.add_argument('--index', required=True, help='gallery file written by enrol')
    search.add_argument('--query', required=True, help='an image, or a folder of images')
    search.add_argument('--top-k', type=int, default=5, help='matches per query (default 5)')
    search.add_argument('--json', action='store_true', help='print JSON instead of a table')
    search.add_argument('--config', help='model config (default: the one the gallery was enrolled with)')
    search.add_argument('--checkpoint', help='checkpoint (default: the one the gallery was enrolled with)')
    search.add_argument('--batch-size', type=int, default=64, help='queries per forward pass')
    for p in (enrol, search):
        p.add_argument('--trust-checkpoint', action='store_true',
                       help='unpickle checkpoints fully (weights_only=False): only for files you trust')
    args = parser.parse_args(argv)
    if args.command == 'search' and args.top_k < 1:
        parser.error(f'--top-k must be >= 1, got {args.top_k}')
    return args


def _model(config: str, checkpoint: str):
    from lrfr.apis import init_model
    if not osp.isfile(checkpoint):
        raise FileNotFoundError(f'checkpoint not found: {checkpoint}')
    # mmengine reports the checkpoint load on stdout; keep stdout for the results (--json must parse)
    with contextlib.redirect_stdout(sys.stderr):
        return init_model(config, checkpoint)


def enrol(args: argparse.Namespace) -> None:
    """Embed ``--gallery`` with the model and save it to ``--index``."""
    from tqdm import tqdm

    from lrfr.apis import FaceGallery
    files, labels = gallery_files(args.gallery)
    model = _model(args.config, args.checkpoint)
    params = dict(nlist=args.nlist, nprobe=args.nprobe) if args.kind == 'ivf' else {}
    gallery = FaceGallery(model, distance=args.distance, batch_size=args.batch_size, backend=args.backend,
                          index=args.kind, **params)
    with tqdm(total=len(files), desc='enrol', unit='face', disable=args.no_progress, file=sys.stderr) as bar:
        skipped = gallery.enrol(files, labels, skip_bad=args.skip_bad, progress=bar.update)
    if skipped:
        print(f'warning: skipped {skipped} unreadable image(s) of {len(files)}', file=sys.stderr)
    if len(gallery) == 0:
        raise ValueError(f'--gallery {args.gallery}: no readable image to enrol')
    if args.kind == 'ivf' and len(gallery) < args.nlist:
        raise ValueError(f'--kind ivf --nlist {args.nlist} needs at least {args.nlist} gallery faces, got '
                         f'{len(gallery)}; lower --nlist or use --kind flat')
    gallery.save(args.index)
    info = gallery.describe()
    print(f'enrolled {info["faces"]} faces of {info["identities"]} identities ({info["embed_dim"]}-d, '
          f'{info["distance"]}, {info["backend"]} {info["kind"]} index) into {args.index}')


def search(args: argparse.Namespace) -> None:
    """Identify ``--query`` faces against ``--index`` and print a table or JSON."""
    from lrfr.apis.gallery import FaceGallery, read_gallery_file
    from lrfr.evaluation.reporting import make_table
    state = read_gallery_file(args.index)
    queries = query_files(args.query)
    config = args.config or state['model'].get('config')
    checkpoint = args.checkpoint or state['model'].get('checkpoint')
    if not config or not checkpoint:
        raise ValueError(f'{args.index}: the gallery names no config/checkpoint; give --config and --checkpoint')
    gallery = FaceGallery.from_state(state, _model(config, checkpoint), args.index)
    gallery.batch_size = args.batch_size
    results = []
    for start in range(0, len(queries), args.batch_size):
        chunk = queries[start:start + args.batch_size]
        for query, matches in zip(chunk, gallery.search(chunk, args.top_k)):
            results.append(dict(query=query, matches=[dict(rank=r, identity=m['label'], distance=m['distance'],
                                                            file=m['file']) for r, m in enumerate(matches, 1)]))
    if args.json:
        print(json.dumps(results, indent=1))
        return
    rows = [[r['query'], m['rank'], m['identity'], f'{m["distance"]:.4f}', m['file'] or '']
            for r in results for m in r['matches']]
    print(make_table(['query', 'rank', 'identity', 'distance', 'gallery file'], rows, label_column=False))


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Entry point of ``lrfr-identify``: bad input ends with ``lrfr-identify: error: <one line>``."""
    args = parse_args(argv)
    from lrfr.utils import register_all_modules
    register_all_modules()
    if args.trust_checkpoint:
        from lrfr.compat import trust_checkpoints
        trust_checkpoints()
    try:
        enrol(args) if args.command == 'enrol' else search(args)
    except (FaceImageError, FileNotFoundError, ValueError, ImportError) as e:
        sys.exit(f'{PROG}: error: {str(e).splitlines()[0] if str(e) else type(e).__name__}')


if __name__ == '__main__':
    main()
