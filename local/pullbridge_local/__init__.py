"""The local stack (`make dev`): the template's functions, routes, schedule and tables on one laptop.

Dev-only: it never ships in the layer.
"""

LOCAL_REGION = "us-east-1"
LOCAL_ACCOUNT_ID = "123456789012"
LOCAL_ACCESS_KEY = "testing"  # dummy credentials: nothing local checks them
