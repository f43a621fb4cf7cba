// name: contract-revisions
// group: Site performance
// title: Sites whose contracts are revised most
// description: Contract revisions per study at each site (from the per-site study facts), for sites in at
//   least a minimum number of studies: where contracting drags and a master agreement might help.
// param min_studies: integer = 1, example 2 -- only sites in at least this many studies with a revision count
// param limit: integer = 10, example 10 -- how many sites
// returns: table
MATCH (s:Site)-[r:PARTICIPATES_IN]->(:Study)
WHERE r.contract_revisions IS NOT NULL
WITH s, count(r) AS studies, sum(r.contract_revisions) AS revisions, max(r.contract_revisions) AS max_revisions
WHERE studies >= $min_studies
RETURN s.id AS site_id,
       s.name AS site,
       s.country AS country,
       studies,
       revisions,
       round(toFloat(revisions) / studies, 2) AS revisions_per_study,
       max_revisions
ORDER BY revisions_per_study DESC, revisions DESC, site_id
LIMIT toInteger($limit)
