"""The Gradio app's parts (the root `app.py` assembles them). Importing these imports gradio but neither torch nor
transformers: the model side (`service`) imports them in its loading thread, after the page is served.

- `sources`: `--dae` / `--mae` checked from config.json, before anything heavy is imported.
- `inputs`: the digit picture and the drawing, which open only uploaded files, checked before decoding.
- `service`: the models (loaded in a background thread) and the computation behind every handler.
- `background`: the dataset analysis, run once in a background thread and cached.
- `views`: images, rows and Markdown for the tabs. `outputs`: each tab's output components, by name.
- `handlers`: gradio glue, filling the outputs by name. `tabs`: one function per tab.
"""
