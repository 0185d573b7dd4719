"""The web layer: blueprints, forms and request helpers over the services; nothing below it
imports it."""
