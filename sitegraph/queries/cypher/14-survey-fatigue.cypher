// name: survey-fatigue
// group: Site performance
// title: Feasibility-survey fatigue
// description: Sites that receive the most feasibility surveys, in total and per study, with how many
//   interactions they had with us besides: the sites most likely to stop answering.
// param min_surveys: integer = 1, example 5 -- only sites that received at least this many surveys
// param limit: integer = 20, example 20 -- how many sites
// returns: table
MATCH (s:Site)-[r:PARTICIPATES_IN]->(:Study)
WITH s, sum(coalesce(r.surveys_received, 0)) AS surveys, count(r) AS studies
WHERE surveys >= $min_surveys
OPTIONAL MATCH (s)<-[:WITH_SITE]-(i:Interaction)
WITH s, surveys, studies, count(i) AS interactions
RETURN s.id AS site_id,
       s.name AS site,
       s.country AS country,
       surveys,
       studies,
       round(toFloat(surveys) / studies, 2) AS surveys_per_study,
       interactions
ORDER BY surveys DESC, surveys_per_study DESC, site_id
LIMIT toInteger($limit)
