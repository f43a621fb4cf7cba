// name: central-investigators
// group: Investigators
// title: Most central investigators in a condition
// description: Investigators on studies of a condition (matched by a case-insensitive part of its name),
//   ranked by the PageRank `sitegraph analyze` stored on them, then by how many such studies they hold.
// param condition: string, required, example "NSCLC" -- part of the condition's name
// param limit: integer = 10, example 10 -- how many investigators
// returns: table
MATCH (c:Condition)<-[:STUDIES]-(st:Study)<-[:INVESTIGATOR_ON]-(i:Investigator)
WHERE toLower(c.name) CONTAINS toLower($condition)
WITH i, count(DISTINCT st) AS studies, collect(DISTINCT c.name) AS conditions
RETURN i.id AS investigator_id,
       i.name AS investigator,
       studies,
       round(i.pagerank, 6) AS pagerank,
       i.degree AS degree,
       round(i.betweenness, 6) AS betweenness,
       conditions[..5] AS conditions
ORDER BY coalesce(i.pagerank, 0.0) DESC, studies DESC, investigator_id
LIMIT toInteger($limit)
