// name: screen-failure-outliers
// group: Site performance
// title: Screen-failure outliers
// description: Sites whose screen-failure rate (screen failures / patients screened, over all their
//   studies) is at least `factor` times the rate across all sites: eligibility criteria or
//   pre-screening may need a look there.
// param min_screened: integer = 20, example 20 -- only sites that screened at least this many patients
// param factor: float = 1.5, example 1.5 -- how many times the overall rate counts as an outlier
// param limit: integer = 25, example 25 -- how many sites
// returns: table
MATCH (:Site)-[r:PARTICIPATES_IN]->(:Study)
WHERE r.screened > 0 AND r.screen_failures IS NOT NULL
WITH toFloat(sum(r.screen_failures)) / sum(r.screened) AS overall
MATCH (s:Site)-[r:PARTICIPATES_IN]->(:Study)
WHERE r.screened > 0 AND r.screen_failures IS NOT NULL
WITH overall, s, sum(r.screened) AS screened, sum(r.screen_failures) AS screen_failures
WHERE screened >= $min_screened
WITH overall, s, screened, screen_failures, toFloat(screen_failures) / screened AS rate
WHERE overall > 0 AND rate >= overall * $factor
RETURN s.id AS site_id,
       s.name AS site,
       s.country AS country,
       screened,
       screen_failures,
       round(rate, 3) AS failure_rate,
       round(overall, 3) AS overall_rate,
       round(rate / overall, 2) AS times_overall
ORDER BY failure_rate DESC, site_id
LIMIT toInteger($limit)
