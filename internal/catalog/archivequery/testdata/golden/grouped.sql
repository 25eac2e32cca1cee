-- partitions: tenant=acme/dt=2026-02-03/hour=10 tenant=acme/dt=2026-02-03/hour=11 tenant=acme/dt=2026-02-03/hour=12
-- wholly inside the range: 11h 12h
-- columns: [{"name":"bucket","type":"timestamp"},{"name":"status","type":"int"},{"name":"host","type":"string"},{"name":"n","type":"int"},{"name":"bytes","type":"int"},{"name":"dur","type":"float"},{"name":"avg_rtt","type":"float"},{"name":"lo","type":"float"},{"name":"hi","type":"int"},{"name":"p999","type":"float"},{"name":"clients","type":"int"},{"name":"with_ua","type":"int"}]
WITH `archive` AS (SELECT * FROM (SELECT *, try_cast(`timestamp` AS TIMESTAMP) AS `_event_time` FROM `hg_job_1_w`) WHERE `tenant` = 'acme' UNION ALL SELECT * FROM (SELECT *, try_cast(`timestamp` AS TIMESTAMP) AS `_event_time` FROM `hg_job_1_e`) WHERE `tenant` = 'acme' AND `_event_time` >= timestamp_micros(1770114600000000) AND `_event_time` < timestamp_micros(1770123600000000))
SELECT timestamp_seconds(div(unix_seconds(`_event_time`), 300) * 300) AS `bucket`, `status` AS `status`, nullif(`host`, '') AS `host`, count(1) AS `n`, CAST(least(coalesce(sum(CAST(`bytes_out` AS DECIMAL(38,0))), 0), 9223372036854775807) AS BIGINT) AS `bytes`, coalesce(sum(`duration_ms`), 0) AS `dur`, avg(`rtt_ms`) AS `avg_rtt`, min(`duration_ms`) AS `lo`, max(`status`) AS `hi`, percentile_approx(`duration_ms`, 0.999, 10000) AS `p999`, approx_count_distinct(nullif(`client_ip`, ''), 0.01) AS `clients`, count(nullif(`user_agent`, '')) AS `with_ua`
FROM `archive`
GROUP BY timestamp_seconds(div(unix_seconds(`_event_time`), 300) * 300), `status`, nullif(`host`, '')
ORDER BY `n` DESC NULLS LAST, `bucket` ASC NULLS FIRST, `status` ASC NULLS FIRST, `host` ASC NULLS FIRST
LIMIT 50
