-- partitions: tenant=acme/dt=2026-02-03/hour=10 tenant=acme/dt=2026-02-03/hour=11 tenant=acme/dt=2026-02-03/hour=12
-- wholly inside the range: 11h 12h
-- columns: [{"name":"timestamp","type":"string"},{"name":"tenant","type":"string"},{"name":"request_id","type":"string"},{"name":"method","type":"string"},{"name":"scheme","type":"string"},{"name":"host","type":"string"},{"name":"path","type":"string"},{"name":"status","type":"int"},{"name":"bytes_in","type":"int"},{"name":"bytes_out","type":"int"},{"name":"duration_ms","type":"float"},{"name":"rtt_ms","type":"float"},{"name":"upstream_ms","type":"float"},{"name":"client_ip","type":"string"},{"name":"user_agent","type":"string"},{"name":"edge","type":"string"},{"name":"protocol","type":"string"}]
WITH `archive` AS (SELECT * FROM (SELECT *, try_cast(`timestamp` AS TIMESTAMP) AS `_event_time` FROM `hg_job_1_w`) WHERE `tenant` = 'acme' UNION ALL SELECT * FROM (SELECT *, try_cast(`timestamp` AS TIMESTAMP) AS `_event_time` FROM `hg_job_1_e`) WHERE `tenant` = 'acme' AND `_event_time` >= timestamp_micros(1770114600000000) AND `_event_time` < timestamp_micros(1770123600000000))
SELECT `timestamp`, `tenant`, `request_id`, `method`, `scheme`, `host`, `path`, `status`, `bytes_in`, `bytes_out`, `duration_ms`, `rtt_ms`, `upstream_ms`, `client_ip`, `user_agent`, `edge`, `protocol`
FROM `archive`
WHERE (`path` = CAST(X'7827204F522074656E616E74203C3E202761636D6527202D2D' AS STRING)) AND (`user_agent` = CAST(X'6074656E616E7460202F2A202A2F200020C3A920E697A5E69CAC205C272022' AS STRING))
ORDER BY `_event_time` ASC NULLS FIRST, `request_id` ASC NULLS FIRST
LIMIT 1000
