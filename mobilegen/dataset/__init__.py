"""Dataset preparation: from what people have (URL lists, Labelme / labelImg annotations, loose
image folders) to the folder `mobilegen train` reads (ROOT/<class>/<image>).

labels.py   class names that are safe folder names, and paths that stay inside the output
imagefile.py   what an acceptable image file is (decodable, allowed format, size limits)
stream.py   a bounded, ordered parallel map: memory stays flat however long the input
fetch.py    `dataset fetch`: URL lists to class folders
annotations.py   `dataset import`: Labelme JSON / Pascal VOC XML boxes to crops
phash.py, check.py, split.py   `dataset check` and `dataset split`

Everything here needs only numpy and Pillow (and defusedxml for VOC XML), no TensorFlow.
"""
