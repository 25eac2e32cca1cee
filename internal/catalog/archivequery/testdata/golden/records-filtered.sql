-- partitions: tenant=acme/dt=2026-02-03/hour=10 tenant=acme/dt=2026-02-03/hour=11 tenant=acme/dt=2026-02-03/hour=12
-- wholly inside the range: 11h 12h
-- columns: [{"name":"timestamp","type":"string"},{"name":"tenant","type":"string"},{"name":"request_id","type":"string"},{"name":"method","type":"string"},{"name":"scheme","type":"string"},{"name":"host","type":"string"},{"name":"path","type":"string"},{"name":"status","type":"int"},{"name":"bytes_in","type":"int"},{"name":"bytes_out","type":"int"},{"name":"duration_ms","type":"float"},{"name":"rtt_ms","type":"float"},{"name":"upstream_ms","type":"float"},{"name":"client_ip","type":"string"},{"name":"user_agent","type":"string"},{"name":"edge","type":"string"},{"name":"protocol","type":"string"}]
WITH `archive` AS (SELECT * FROM (SELECT *, try_cast(`timestamp` AS TIMESTAMP) AS `_event_time` FROM `hg_job_1_w`) WHERE `tenant` = 'acme' UNION ALL SELECT * FROM (SELECT *, try_cast(`timestamp` AS TIMESTAMP) AS `_event_time` FROM `hg_job_1_e`) WHERE `tenant` = 'acme' AND `_event_time` >= timestamp_micros(1770114600000000) AND `_event_time` < timestamp_micros(1770123600000000))
SELECT `timestamp`, `tenant`, `request_id`, `method`, `scheme`, `host`, `path`, `status`, `bytes_in`, `bytes_out`, `duration_ms`, `rtt_ms`, `upstream_ms`, `client_ip`, `user_agent`, `edge`, `protocol`
FROM `archive`
WHERE (`status` >= 500L) AND (`method` IN ('GET', 'POST')) AND startswith(`path`, '/api/') AND (`host` IS NULL OR `host` = '' OR `host` <> 'x.example') AND (`duration_ms` < 12.5D)
ORDER BY `duration_ms` DESC NULLS LAST, `_event_time` ASC NULLS FIRST, `request_id` ASC NULLS FIRST
LIMIT 10
