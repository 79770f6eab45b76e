"""Remote safety providers: the one place in ``detectors/`` allowed to talk to the network.

Import the module you need (``detectors.safety.providers.azure``, ``...openai_moderation``); this package does
not import them, so a missing optional SDK only fails the provider that needs it.
"""
