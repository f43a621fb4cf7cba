// name: sites-by-pagerank
// group: Sites
// title: Most central sites (PageRank)
// description: Sites ranked by the PageRank that `sitegraph analyze` stored on them, optionally within
//   one country: the hubs of the site–investigator–study network, with their degree and betweenness.
// param country: string = null, example "China" -- only sites in this country (case-insensitive); all when omitted
// param limit: integer = 10, example 10 -- how many sites
// returns: table
MATCH (s:Site)
WHERE s.pagerank IS NOT NULL
  AND ($country IS NULL OR toLower(s.country) = toLower($country))
RETURN s.id AS site_id,
       s.name AS site,
       s.city AS city,
       s.country AS country,
       round(s.pagerank, 6) AS pagerank,
       s.degree AS degree,
       round(s.betweenness, 6) AS betweenness
ORDER BY s.pagerank DESC, site_id
LIMIT toInteger($limit)
