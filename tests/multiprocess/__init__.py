"""Several server processes sharing one de-duplication store."""

#: The secret the app and the tests share.
SECRET = "whsec_several_workers"
