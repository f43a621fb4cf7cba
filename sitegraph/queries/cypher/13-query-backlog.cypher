// name: query-backlog
// group: Site performance
// title: Data-query backlog
// description: Sites with the most open data queries across their studies, with the study that holds
//   most of them: where monitors should chase query resolution first.
// param min_open: integer = 1, example 5 -- only sites with at least this many open queries in all
// param limit: integer = 20, example 20 -- how many sites
// returns: table
MATCH (s:Site)-[r:PARTICIPATES_IN]->(st:Study)
WHERE r.open_queries > 0
WITH s, r, st
ORDER BY r.open_queries DESC, st.id
WITH s, sum(r.open_queries) AS open_queries, count(st) AS studies, collect(st.id)[0] AS worst_study,
     max(r.open_queries) AS worst_study_open
WHERE open_queries >= $min_open
RETURN s.id AS site_id,
       s.name AS site,
       s.country AS country,
       open_queries,
       studies,
       worst_study,
       worst_study_open
ORDER BY open_queries DESC, site_id
LIMIT toInteger($limit)
