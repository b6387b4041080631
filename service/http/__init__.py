"""Flask: blueprints per resource over the service layer, and the one error handler."""
