"""
Ultralytics' own results on ONNX files, the reference of the parity tests (test/parity/).

Run by the Python of the Ultralytics environment (``make ultralytics``), never imported by the
tests' own interpreter::

    .venv-ultralytics/bin/python test/ultralytics_reference.py WORK_DIR SPECS_JSON

SPECS_JSON names the images and the models::

    {"images": {"bus": "/path/bus.png", ...},
     "models": [{"name": "yolov8n-seg", "model": "yolov8n-seg.yaml",
                 "export": {"imgsz": 640, "dynamic": false}, "conf": 0.05,
                 "batches": [["bus"], ["zidane"]]}, ...]}

``model`` is an Ultralytics model YAML (a model of random weights, built offline), a ``.pt``
file (exported to ONNX with ``export``) or an ``.onnx`` file (used as it is). Each batch is one
``YOLO(onnx).predict(images, conf=conf, iou=0.7)`` call on the images as BGR arrays, so
Ultralytics runs a batch of a dynamic-batch model as one run. ``conf`` null: predict's default.

A random-weight model is first brought to life, else it finds nothing: a deep stack of freshly
initialised layers shrinks its activations towards zero, so every score is the class bias
(about 1e-5) and every box the same. The batch-norm statistics are measured on the images
(as a first training step would), the final regression layers of the head are scaled up so
boxes, keypoints, angles and mask coefficients vary (box sides kept positive where the head
has no DFL), the class biases are set so that ANCHORS_PER_IMAGE anchors of the image that
scores lowest score above ``conf``, and a classifier's logits are spread to a standard
deviation of CLASSIFIER_LOGIT_STD. The ONNX file holds those weights; both sides run
that same file.

Writes WORK_DIR/index.json::

    {"ultralytics": "8.4.190", "models": {NAME: {"onnx": PATH, "task": "segment",
     "conf": 0.05, "names": {"0": "person", ...}, "inputs": [[1, 3, 640, 640]],
     "outputs": [[1, 116, 8400], [1, 32, 160, 160]], "seconds": 1.2,
     "batches": [[{"image": "bus", "path": PATH, "npz": PATH}, ...], ...]}}}

and per image of each batch a .npz file of source-pixel results: ``boxes`` (N, 4) xyxy,
``scores`` (N,), ``class_ids`` (N,); pose ``keypoints`` (N, K, 2) and ``keypoint_scores``
(N, K); obb ``xywhr`` (N, 5) and ``corners`` (N, 4, 2) with ``boxes`` their axis-aligned
envelope; segment ``masks`` (N, H, W) bool in source pixels; classify ``top5`` and
``top5_probs``; always ``shape`` (H, W).
"""

import json
import math
import os
import shutil
import sys
import time

ANCHORS_PER_IMAGE = 20
REGRESSION_GAIN = 4.0
CLASSIFIER_LOGIT_STD = 4.0
IOU = 0.7


def letterboxed_batch(images, imgsz):
    """Return the images as Ultralytics feeds a square fixed-size model: (B, 3, S, S) RGB 0..1."""
    import numpy as np
    import torch
    from ultralytics.data.augment import LetterBox
    boxed = [LetterBox((imgsz, imgsz), auto=False)(image=image) for image in images]
    array = np.stack([b[..., ::-1].transpose(2, 0, 1) for b in boxed]).astype(np.float32)
    return torch.from_numpy(array / 255.0)


def measure_batch_norms(model, batch):
    """Set every batch norm's statistics to those of the batch, as one training step would."""
    import torch
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.reset_running_stats()
            module.momentum = None  # a cumulative average: after one batch, its statistics
    model.train()
    with torch.no_grad():
        model(batch)
    model.eval()


def capture(modules, model, batch):
    """Run the model on the batch and return the output of each of the modules."""
    import torch
    outputs = {}
    hooks = [m.register_forward_hook(
        lambda module, args, out, key=id(m): outputs.__setitem__(key, out.detach()))
        for m in modules]
    try:
        with torch.no_grad():
            model(batch)
    finally:
        for hook in hooks:
            hook.remove()
    return [outputs.get(id(m)) for m in modules]  # None: not run in inference


def enliven_detection_head(model, head, batch, conf):
    """Spread the head's regressions and set its class biases to ANCHORS_PER_IMAGE above conf."""
    import torch
    for name, branch in head.named_children():
        if isinstance(branch, torch.nn.ModuleList) and not name.endswith('cv3'):
            finals = [list(sequence.modules())[-1] for sequence in branch]
            for final in finals:
                final.weight.data *= REGRESSION_GAIN
                if name.endswith('cv4'):
                    final.bias.data *= REGRESSION_GAIN
            if name.endswith('cv2') and getattr(head, 'reg_max', 16) == 1:
                # Box sides as distances (no DFL): kept positive, as a trained model's are.
                outputs = capture(finals, model, batch)
                for out, final in zip(outputs, finals):
                    if out is not None:
                        lowest = (out - final.bias.view(1, -1, 1, 1)).amin((0, 2, 3))
                        final.bias.data = 0.5 - lowest
    logit = math.log(conf / (1.0 - conf))
    for name in ('cv3', 'one2one_cv3'):
        if not hasattr(head, name):
            continue
        finals = [list(sequence.modules())[-1] for sequence in getattr(head, name)]
        outputs = capture(finals, model, batch)
        if any(out is None for out in outputs):
            continue  # a training-only branch
        best = torch.cat([(out - conv.bias.view(1, -1, 1, 1)).amax(1).flatten(1)
                          for out, conv in zip(outputs, finals)], 1)  # (B, anchors)
        fraction = min(1.0, ANCHORS_PER_IMAGE / best.shape[1])
        coldest = min(float(torch.quantile(b.double(), 1.0 - fraction)) for b in best)
        bias = logit - coldest  # the image that scores lowest has ANCHORS_PER_IMAGE above conf
        for conv in finals:
            conv.bias.data.fill_(bias)


def enliven_classifier(model, head, batch):
    """Scale the classifier's logits to a standard deviation of CLASSIFIER_LOGIT_STD."""
    linear = head.linear
    [logits] = capture([linear], model, batch)
    gain = CLASSIFIER_LOGIT_STD / float(logits.std())
    linear.weight.data *= gain
    linear.bias.data *= gain


def enliven(yolo, images, imgsz, conf):
    """Bring a random-weight model to life on the images (see the module's docstring)."""
    model = yolo.model
    batch = letterboxed_batch(images, imgsz)
    measure_batch_norms(model, batch)
    head = model.model[-1]
    if yolo.task == 'classify':
        enliven_classifier(model, head, batch)
    elif yolo.task == 'semantic':
        return  # its batch-norm statistics alone make a class map of several classes
    else:
        enliven_detection_head(model, head, batch, conf)


def export(spec, images, work_dir):
    """Return the ONNX file of a spec, exported into a folder of its own when it needs to be."""
    import torch
    from ultralytics import YOLO
    source = spec['model']
    if source.endswith('.onnx'):
        return os.path.abspath(source)
    folder = os.path.join(work_dir, 'models', spec['name'])
    os.makedirs(folder, exist_ok=True)
    kwargs = dict(spec.get('export', {}))
    imgsz = kwargs.setdefault('imgsz', 640)
    if source.endswith('.pt'):
        source = shutil.copy(source, folder)  # the export is written beside its .pt file
        yolo = YOLO(source)
    else:
        torch.manual_seed(spec.get('seed', 0))
        yolo = YOLO(source)
        names = sorted({name for batch in spec['batches'] for name in batch})
        with torch.no_grad():
            enliven(yolo, [images[name] for name in names], imgsz, spec.get('conf') or 0.25)
    cwd = os.getcwd()
    os.chdir(folder)  # a model built from a YAML file is exported into the working directory
    try:
        path = yolo.export(format='onnx', **kwargs)
    finally:
        os.chdir(cwd)
    return os.path.abspath(os.path.join(folder, path))


def tensor_shapes(values):
    return [[d.dim_value if d.dim_value else d.dim_param for d in v.type.tensor_type.shape.dim]
            for v in values]


def image_results(result):
    """Return one Ultralytics result in source pixels, as arrays."""
    import numpy as np
    from ultralytics.utils import ops
    height, width = result.orig_shape
    out = {'shape': np.array([height, width])}
    if result.probs is not None:
        out['top5'] = np.array(result.probs.top5, np.int64)
        out['top5_probs'] = result.probs.top5conf.cpu().numpy().astype(np.float64)
        return out
    if result.semantic_mask is not None:  # a class id per source pixel
        out['class_map'] = result.semantic_mask.data.cpu().numpy().astype(np.int64)
        return out
    if result.obb is not None:
        obb = result.obb
        out['xywhr'] = obb.xywhr.cpu().numpy().astype(np.float64)
        out['corners'] = obb.xyxyxyxy.cpu().numpy().astype(np.float64)
        out['boxes'] = obb.xyxy.cpu().numpy().astype(np.float64)
        out['scores'] = obb.conf.cpu().numpy().astype(np.float64)
        out['class_ids'] = obb.cls.cpu().numpy().astype(np.int64)
        return out
    boxes = result.boxes
    out['boxes'] = boxes.xyxy.cpu().numpy().astype(np.float64)
    out['scores'] = boxes.conf.cpu().numpy().astype(np.float64)
    out['class_ids'] = boxes.cls.cpu().numpy().astype(np.int64)
    if result.keypoints is not None:
        out['keypoints'] = result.keypoints.xy.cpu().numpy().astype(np.float64)
        if result.keypoints.has_visible:
            out['keypoint_scores'] = result.keypoints.conf.cpu().numpy().astype(np.float64)
    if result.masks is not None:  # at the model's input size: back to the source's pixels
        data = result.masks.data.float()
        out['masks'] = (ops.scale_masks(data[None], (height, width))[0] > 0.5).cpu().numpy()
    return out


def run_model(spec, images, work_dir):
    """Export a spec's model, run Ultralytics on each of its batches and save the results."""
    import numpy as np
    import onnx
    from ultralytics import YOLO
    start = time.perf_counter()
    onnx_path = export(spec, images, work_dir)
    graph = onnx.load(onnx_path, load_external_data=False).graph
    yolo = YOLO(onnx_path)
    folder = os.path.join(work_dir, 'reference', spec['name'])
    os.makedirs(folder, exist_ok=True)
    kwargs = {'iou': IOU, 'verbose': False}
    if 'imgsz' in spec.get('export', {}):
        # the export size: Ultralytics predicts a dynamic export at 640 unless told
        kwargs['imgsz'] = spec['export']['imgsz']
    if spec.get('conf') is not None:
        kwargs['conf'] = spec['conf']
    batches = []
    for number, names in enumerate(spec['batches']):
        results = yolo.predict([images[name] for name in names], **kwargs)
        entries = []
        for name, result in zip(names, results):
            npz = os.path.join(folder, f'{number}-{name}.npz')
            arrays = image_results(result)
            if yolo.task == 'segment' and 'masks' not in arrays:
                height, width = result.orig_shape
                arrays['masks'] = np.zeros((0, height, width), bool)
            np.savez_compressed(npz, **arrays)
            entries.append({'image': name, 'npz': npz})
        batches.append(entries)
    return {
        'onnx': onnx_path,
        'task': yolo.task,
        'conf': spec.get('conf'),
        'names': {str(k): v for k, v in yolo.names.items()},
        'inputs': tensor_shapes(graph.input),
        'outputs': tensor_shapes(graph.output),
        'seconds': round(time.perf_counter() - start, 2),
        'batches': batches,
    }


def main(argv):
    if len(argv) != 2:
        print(__doc__.split('\n\n')[0], 'Usage: ultralytics_reference.py WORK_DIR SPECS_JSON',
              sep='\n', file=sys.stderr)
        return 2
    work_dir, specs_path = (os.path.abspath(a) for a in argv)
    os.makedirs(work_dir, exist_ok=True)
    os.environ['YOLO_OFFLINE'] = '1'  # no download, no check for updates, no telemetry
    os.environ.setdefault('YOLO_CONFIG_DIR', os.path.join(work_dir, 'ultralytics-config'))
    os.environ.setdefault('YOLO_VERBOSE', 'False')
    import cv2
    import ultralytics
    with open(specs_path) as f:
        specs = json.load(f)
    images = {}
    for name, path in specs['images'].items():
        images[name] = cv2.imread(path, cv2.IMREAD_COLOR)
        if images[name] is None:
            print(f'cannot read image {path}', file=sys.stderr)
            return 1
    index = {'ultralytics': ultralytics.__version__, 'models': {}}
    for spec in specs['models']:
        entry = run_model(spec, images, work_dir)
        for batch in entry['batches']:
            for item in batch:
                item['path'] = os.path.abspath(specs['images'][item['image']])
        index['models'][spec['name']] = entry
        print(f"{spec['name']}: {entry['task']} {entry['outputs']} in {entry['seconds']} s",
              file=sys.stderr, flush=True)
    with open(os.path.join(work_dir, 'index.json'), 'w') as f:
        json.dump(index, f, indent=1)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
