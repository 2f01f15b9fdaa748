"""Pure logic of the recommender: no broker, no network, no database."""
