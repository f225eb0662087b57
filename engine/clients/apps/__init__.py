"""Apps that run on the cluster clock: a producer app and a consumer app, steered by the app
service.
"""
