-- partitions: tenant=acme/dt=2026-02-03/hour=10 tenant=acme/dt=2026-02-03/hour=11 tenant=acme/dt=2026-02-03/hour=12
-- wholly inside the range: 11h 12h
-- columns: null
WITH `archive` AS (SELECT * FROM (SELECT *, try_cast(`timestamp` AS TIMESTAMP) AS `_event_time` FROM `hg_job_1_w`) WHERE `tenant` = 'acme' UNION ALL SELECT * FROM (SELECT *, try_cast(`timestamp` AS TIMESTAMP) AS `_event_time` FROM `hg_job_1_e`) WHERE `tenant` = 'acme' AND `_event_time` >= timestamp_micros(1770114600000000) AND `_event_time` < timestamp_micros(1770123600000000))
SELECT * FROM (
SELECT * FROM archive
) AS `q` LIMIT 1000
