"""The registered dataset sources, one line each (:func:`~ginv.data.source.register_source`):
a dataset string is tried on them in this order."""

from __future__ import annotations

from ginv.data.image_folder import ImageFolderSource
from ginv.data.mnist import IdxSource
from ginv.data.npz import NpzSource
from ginv.data.source import SourceKind, register_source

register_source(SourceKind("mnist", "Transforming-MNIST", IdxSource.opener("mnist", ("mnist",))))
register_source(SourceKind("fmnist", "Transforming-FMNIST",
                           IdxSource.opener("fashion-mnist", ("fmnist", "fashion-mnist"))))  # fmt: skip
register_source(
    SourceKind("npz", "a PATH.npz with x_train, y_train, x_test, y_test", NpzSource.open)
)
register_source(SourceKind("imagefolder", "a folder PATH with train/<class>/, test/<class>/ images",
                           ImageFolderSource.open))  # fmt: skip
