"""The documented operations through a Python client generated from proto/ with grpcio-tools.

Usage: every_call.py GENERATED_DIR ADDRESS
"""
import sys
import threading

sys.path.insert(0, sys.argv[1])
import grpc  # noqa: E402
from chronodb.v1 import changes_pb2, changes_pb2_grpc, sql_pb2, sql_pb2_grpc  # noqa: E402
from chronodb.v1 import timetravel_pb2, timetravel_pb2_grpc, values_pb2  # noqa: E402
from chronodb.v1 import audit_pb2, audit_pb2_grpc, monitor_pb2, monitor_pb2_grpc  # noqa: E402
from chronodb.v1 import optimizer_pb2, optimizer_pb2_grpc  # noqa: E402
import json  # noqa: E402

channel = grpc.insecure_channel(sys.argv[2])
sql = sql_pb2_grpc.SqlStub(channel)
tt = timetravel_pb2_grpc.TimeTravelStub(channel)
changes = changes_pb2_grpc.ChangesStub(channel)
audit = audit_pb2_grpc.AuditStub(channel)
optimizer = optimizer_pb2_grpc.OptimizerStub(channel)
monitor = monitor_pb2_grpc.MonitorStub(channel)


def execute(text, *params):
    return sql.Execute(sql_pb2.ExecuteRequest(sql=text, params=list(params))).results


def commit_ts(results):
    return results[-1].write.commit_ts_micros


def value(v):
    kind = v.WhichOneof("kind")
    return None if kind in (None, "null") else getattr(v, kind)


execute("CREATE TABLE users (id BIGINT PRIMARY KEY, name TEXT, email TEXT)")
t1 = commit_ts(execute("INSERT INTO users (id, name, email) VALUES (1, 'Alice', 'alice@email.com')"))
t2 = commit_ts(execute("UPDATE users SET email = ? WHERE id = ?",
                       values_pb2.Value(string="alice@new.example"), values_pb2.Value(int64=1)))
assert t2 > t1, (t1, t2)

old = execute("SELECT email FROM users AS OF TIMESTAMP ? WHERE name = 'Alice'",
              values_pb2.Value(timestamp_micros=t1))
assert value(old[0].query.rows[0].values[0]) == "alice@email.com", old
now = execute("SELECT email FROM users WHERE name = 'Alice'")
assert value(now[0].query.rows[0].values[0]) == "alice@new.example", now

history = tt.ChangeHistory(timetravel_pb2.ChangeHistoryRequest(table="users", primary_key=[values_pb2.Value(int64=1)]))
assert [v.operation for v in history.versions] == [timetravel_pb2.OPERATION_INSERT, timetravel_pb2.OPERATION_UPDATE]

received = []
stream = changes.Subscribe(changes_pb2.SubscribeRequest(tables=["users"]))
ready = threading.Event()


def listen():
    ready.set()
    for event in stream:
        received.append(event)
        return


thread = threading.Thread(target=listen)
thread.start()
ready.wait()
# The subscription is live once the server has it; write until the change is seen.
for i in range(50):
    execute(f"INSERT INTO users VALUES ({100 + i}, 'Bob', 'bob@x')")
    thread.join(timeout=0.1)
    if received:
        break
stream.cancel()
thread.join(timeout=5)
assert received and received[0].changes[0].operation == timetravel_pb2.OPERATION_INSERT, received

# db.verify_audit_integrity()
verified = audit.Verify(audit_pb2.VerifyRequest())
assert verified.ok and verified.transactions >= 3, verified
# db.generate_audit_report('users', start, end)
report = audit.Report(audit_pb2.AuditReportRequest(table="users", from_micros=t1, to_micros=t2))
assert [e.operation for e in report.entries] == [timetravel_pb2.OPERATION_INSERT, timetravel_pb2.OPERATION_UPDATE], report
# db.verify_transaction(hash): the hash from an inclusion proof of the update.
proof = audit.InclusionProof(audit_pb2.InclusionProofRequest(transaction=report.entries[1].transaction))
checked = audit.VerifyTransaction(audit_pb2.VerifyTransactionRequest(tx_hash=proof.tx_hash))
assert checked.ok and checked.transaction == report.entries[1].transaction, checked
checkpoint = audit.Checkpoint(audit_pb2.CheckpointRequest())
assert checkpoint.database == verified.database and checkpoint.size >= proof.tree_size, checkpoint
# db.ml_optimizer.get_performance_metrics() / generate_training_report()
metrics = json.loads(optimizer.PerformanceMetrics(optimizer_pb2.PerformanceMetricsRequest()).json)
assert metrics["estimates_served"] >= 0, metrics
training = optimizer.TrainingReport(optimizer_pb2.TrainingReportRequest())
assert training.text, training
# db.get_health_report()
health = monitor.HealthReport(monitor_pb2.HealthReportRequest())
assert json.loads(health.json)["database"] == verified.database, health.json
assert any(s["statement"].startswith("select email from users") for s in json.loads(health.json)["statements"])
print("python client OK")
