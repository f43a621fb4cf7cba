// name: activated-not-enrolling
// group: Site performance
// title: Sites never enrolling despite activation
// description: Sites that were activated on studies (an activation date is recorded) but have enrolled
//   nobody on any of them: candidates for a re-qualification call or for closing.
// param activated_before: string = null, example "2025-01-01" -- only count activations on or before this ISO date; all when omitted
// param min_studies: integer = 1, example 1 -- only sites activated on at least this many studies
// param limit: integer = 25, example 25 -- how many sites
// returns: table
MATCH (s:Site)-[r:PARTICIPATES_IN]->(st:Study)
WHERE r.activation_date IS NOT NULL
  AND ($activated_before IS NULL OR r.activation_date <= $activated_before)
WITH s,
     count(st) AS activated_studies,
     sum(coalesce(r.enrolled, 0)) AS enrolled,
     min(r.activation_date) AS first_activation,
     sum(coalesce(r.target, 0)) AS target,
     collect(st.id) AS studies
WHERE enrolled = 0 AND activated_studies >= $min_studies
RETURN s.id AS site_id,
       s.name AS site,
       s.country AS country,
       activated_studies,
       first_activation,
       target,
       studies
ORDER BY activated_studies DESC, first_activation, site_id
LIMIT toInteger($limit)
