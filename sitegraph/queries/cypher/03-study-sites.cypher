// name: study-sites
// group: Sites
// title: A study's sites and how they perform
// description: Every site of one study with its per-site facts (status, activation time, enrolment
//   against target, screen failures, contract revisions, open data queries), slowest activation first.
// param study_id: string, required, example "NCT04746924" -- the NCT id of the study
// param limit: integer = 100, example 25 -- at most this many sites
// returns: table
MATCH (s:Site)-[r:PARTICIPATES_IN]->(st:Study {id: $study_id})
RETURN s.id AS site_id,
       s.name AS site,
       s.country AS country,
       r.status AS status,
       r.activation_days AS activation_days,
       r.enrolled AS enrolled,
       r.target AS target,
       r.screened AS screened,
       r.screen_failures AS screen_failures,
       r.contract_revisions AS contract_revisions,
       r.open_queries AS open_queries
ORDER BY coalesce(r.activation_days, -1) DESC, site_id
LIMIT toInteger($limit)
