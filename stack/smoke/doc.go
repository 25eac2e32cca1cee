// Package smoke holds the smoke tests of the local stack: each engine the
// project depends on is driven through the client library the services use,
// and the data that comes back must equal what went in. They run with the
// build tag `integration` (`make test-integration`) against the stack started
// by `make stack-up`. The PySpark smoke test lives beside them
// (test_spark_kafka.py) and runs under pytest.
package smoke
