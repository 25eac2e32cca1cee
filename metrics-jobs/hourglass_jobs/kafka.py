"""Consumer-group offsets and offsets-for-times through kafka-clients (shipped in the
Spark Kafka connector jars) over py4j. Spark never commits Kafka offsets itself; the
job commits what it has processed to the metric's consumer group so that Kafka's own
tools and the lag monitor see its lag."""


class Admin:
    def __init__(self, jvm, brokers, extra=None):
        self.jvm = jvm
        props = jvm.java.util.Properties()
        props.put("bootstrap.servers", brokers)
        props.put("client.id", "hourglass-metrics-jobs")
        for k, v in (extra or {}).items():
            props.put(k, v)
        self.admin = jvm.org.apache.kafka.clients.admin.AdminClient.create(props)

    def close(self):
        self.admin.close()

    def partitions(self, topic):
        """Partition numbers of topic."""
        jl = self.jvm.java.util.ArrayList()
        jl.add(topic)
        desc = self.admin.describeTopics(jl).allTopicNames().get()
        return sorted(p.partition() for p in desc.get(topic).partitions())

    def committed(self, group, topic):
        """{partition: committed offset} of group on topic (partitions without one left out)."""
        res = self.admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get()
        out = {}
        for tp in res.keySet().toArray():
            if tp.topic() != topic:
                continue
            om = res.get(tp)
            if om is not None and om.offset() >= 0:
                out[tp.partition()] = om.offset()
        return out

    def commit(self, group, topic, offsets):
        """Commits {partition: next offset to read} for group (which must have no active
        members: only the job uses it, and Spark reads with its own group id)."""
        if not offsets:
            return
        m = self.jvm.java.util.HashMap()
        for p, o in offsets.items():
            tp = self.jvm.org.apache.kafka.common.TopicPartition(topic, int(p))
            m.put(tp, self.jvm.org.apache.kafka.clients.consumer.OffsetAndMetadata(int(o)))
        self.admin.alterConsumerGroupOffsets(group, m).all().get()

    def offsets(self, topic, spec_for):
        """{partition: offset} for OffsetSpec given per partition by spec_for(OffsetSpec
        class, partition); -1 where Kafka has no answer (no record at/after a time)."""
        OffsetSpec = self.jvm.org.apache.kafka.clients.admin.OffsetSpec
        m = self.jvm.java.util.HashMap()
        tps = {}
        for p in self.partitions(topic):
            tp = self.jvm.org.apache.kafka.common.TopicPartition(topic, p)
            tps[p] = tp
            m.put(tp, spec_for(OffsetSpec, p))
        res = self.admin.listOffsets(m).all().get()
        return {p: res.get(tp).offset() for p, tp in tps.items()}

    def end_offsets(self, topic):
        return self.offsets(topic, lambda OS, p: OS.latest())

    def start_offsets(self, topic):
        return self.offsets(topic, lambda OS, p: OS.earliest())

    def offsets_for_time(self, topic, millis):
        """Per partition, the earliest offset whose record timestamp is >= millis; -1
        when there is none yet."""
        return self.offsets(topic, lambda OS, p: OS.forTimestamp(int(millis)))
