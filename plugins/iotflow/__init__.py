"""IoTFlow device telemetry: a device registry, MQTT via Telegraf, HTTP via this plugin."""
