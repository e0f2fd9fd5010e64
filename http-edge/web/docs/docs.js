/* placeholder "/openapi.json" */
