"""The model code MLflow logs with each docsort model ("models from code": loading runs this
file instead of unpickling an object). Run by MLflow only, never imported by docsort."""

from mlflow.models import set_model

from docsort.tracking.pyfunc import DocsortModel

set_model(DocsortModel())
