// Package archive owns the raw-log archive: its directory layout, the file
// format of its part files, and the one small file-system interface ([FS])
// through which the archiver writes it and logpeek reads it, with two
// implementations: HDFS ([NewHDFS], colinmarc/hdfs) and a local directory
// ([NewLocal], the embedded default). docs/archive-format.md is the one-page
// version of this specification.
//
// # Layout
//
// Paths are slash-separated and relative to the archive root:
//
//	<root>/tenant=<tenant>/dt=YYYY-MM-DD/hour=HH/part-<partition>-<first>-<last>.jsonl.gz
//
// where:
//
//   - tenant is the record's tenant ([a-z0-9-]{1,63}).
//   - dt and hour are the UTC date and hour (00-23) of the record's event time
//     (its timestamp field), not of its arrival: a late record lands in the
//     hour it happened in, possibly in a new part file beside older ones.
//   - partition is the Kafka partition of hourglass.logs.raw the records came
//     from; first and last are the Kafka offsets of the first and last record
//     in the file, in decimal without padding.
//
// The directory names are Hive-style (key=value), so Spark and Hive discover
// tenant, dt and hour as partition columns.
//
// # Part files
//
// A part file is one gzip member holding JSON lines: one record per line, in
// the canonical form of internal/record (Record.MarshalJSON: UTC timestamp,
// snake_case keys, absent optional fields omitted), each line ending in '\n',
// in Kafka offset order. A file holds every valid record of its tenant and
// hour that the partition carried at offsets first..last — the offsets in
// between belong to other tenants or hours, or were invalid (invalid records
// are never archived: the router sends them to the DLQ).
//
// Offset ranges of the part files of one (tenant, hour, partition) never
// overlap. Together with the rule above this makes a record's archival
// checkable from file names alone: the record at offset o of partition p,
// with tenant t and event hour h, is archived if and only if a part file of
// tenant=t/dt/hour=h with partition p has first <= o <= last.
//
// # Writing
//
// A part file is written under a temporary name in its final directory,
// _tmp.part-<partition>-<first>-<last>.jsonl.gz.<nonce>, closed (on HDFS:
// the NameNode has completed the file), and only then renamed to its final
// name. A reader therefore never sees a partial part file. Names beginning
// with "_" or "." are ignored by readers (and by Hadoop input formats);
// leftover temporary files are deleted by the archiver when it reconciles.
package archive
