"""docsort models in an MLflow model registry: each saved model logged as an MLflow model (a
``python_function`` flavor wrapping the saved directory, so ``mlflow models serve`` and Spark
UDFs run it), versions with ``champion`` / ``challenger`` aliases, and registry references
(``models:/NAME@champion``, ``models:/NAME/3``) resolved to a local copy of the saved model.

``uri`` (where the registry is, what a reference is) imports nothing heavy; ``client`` imports
MLflow when first asked; ``models`` logs, lists, aliases and downloads versions; ``pyfunc``
is the MLflow model class, an entry point over ``docsort.api`` like the CLI. Nothing in this
package but ``pyfunc`` and ``model_code`` imports ``docsort.api`` (a test checks), so the API
can use the rest.
"""
