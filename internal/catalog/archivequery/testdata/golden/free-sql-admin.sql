-- partitions: 
-- wholly inside the range: 11h 12h
-- columns: null
WITH `archive` AS (SELECT * FROM (SELECT *, try_cast(`timestamp` AS TIMESTAMP) AS `_event_time` FROM `hg_job_1_w`) UNION ALL SELECT * FROM (SELECT *, try_cast(`timestamp` AS TIMESTAMP) AS `_event_time` FROM `hg_job_1_e`) WHERE `_event_time` >= timestamp_micros(1770114600000000) AND `_event_time` < timestamp_micros(1770123600000000))
SELECT * FROM (
SELECT tenant, count(*) AS n FROM archive GROUP BY tenant
) AS `q` LIMIT 5
