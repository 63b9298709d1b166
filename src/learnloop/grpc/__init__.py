"""The gRPC adapter: the Open Inference Protocol (v2) service, ``inference.GRPCInferenceService``.

``proto/grpc_predict_v2.proto`` is the service definition; ``grpc_predict_v2_pb2*.py`` are
generated from it by ``make proto`` and committed. :mod:`learnloop.grpc.server` holds the server.
Nothing here is imported by ``import learnloop``: ``grpcio`` loads only when gRPC is used.
"""
