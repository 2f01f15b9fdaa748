"""The developer kit: the demo and its report, generators of test corpora and interaction logs, dataset
readers, the local Prometheus, API-doc generation and the topic tailer. Never imported by a service."""
